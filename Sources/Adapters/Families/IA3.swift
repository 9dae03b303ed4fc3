import Foundation
import SafeTensors
import SDXL

/// (IA)³ (docs/families.md, "(IA)³"): W' = W ⊙ s, s broadcast along the output rows or the input channels.
/// The file holds only s (or s − 1), so the layer's other dimension comes from the base checkpoint: a
/// module's ModuleInfo leaves it 0 until `resolved(_:shape:)` fills it in.
public enum IA3 {
    /// Whether a module's keys are (IA)³: PEFT's `ia3_l`, or LyCORIS' vector beside its `on_input` flag.
    static func isIA3(_ module: ModuleKeys) -> Bool {
        module.tensors[.ia3Vector] != nil || module.tensors[.ia3OnInput] != nil
    }

    /// The ModuleInfo of an (IA)³ module from the header: the vector's axis and length, the kernel of a
    /// convolution (the layer table's, `ConvolutionKernels`); the dimension the vector does not cover is 0.
    static func describe(_ module: ModuleKeys, canonical: String, file: SafeTensorsFile, path: String, format: AdapterFormat,
                         base: BaseArchitecture?) throws -> ModuleInfo {
        let tensors = FamilyTensors(module: module, file: file, path: path, format: format)
        guard module.tensors[.ia3Vector] != nil else {
            throw AdapterError("\(path): module \(module.fileName) has an (IA)³ on_input flag but no vector (\(module.fileName).weight)")
        }
        let extra = module.tensors.keys.filter { ![.ia3Vector, .ia3OnInput].contains($0) }
        guard extra.isEmpty else {
            throw AdapterError("\(path): module \(module.fileName) mixes an (IA)³ vector with \(extra.map(\.rawValue).sorted().joined(separator: ", ")) tensors")
        }
        let shape = try tensors.dimensions(.ia3Vector)
        let length = shape.reduce(1, *)
        // A convolution's vector is [1, n, 1, 1] in both libraries; a linear layer's is [n] (LyCORIS),
        // [1, in] or [out, 1] (PEFT).
        let isConvolution = shape.count == 4
        guard shape.count <= 2 || (isConvolution && shape[0] == 1 && shape[2] == 1 && shape[3] == 1), length > 0,
              shape.filter({ $0 != 1 }).count <= 1 else {
            throw AdapterError("\(path): module \(module.fileName): (IA)³ vector of shape \(shape) is not one entry per row or channel")
        }
        let axis: IA3Axis, spelling: IA3Spelling
        if format == .peft {
            spelling = .peft
            axis = try peftAxis(module, shape: shape, path: path)
        } else {
            spelling = .lycoris
            guard let flag = module.tensors[.ia3OnInput], let info = file.header.tensor(named: flag), info.elementCount == 1 else {
                throw AdapterError("\(path): module \(module.fileName) has a LyCORIS-style vector (\(module.fileName).weight) but no scalar on_input flag telling which axis it scales")
            }
            let value = try file.scalar(info)
            guard value == 0 || value == 1 else { throw AdapterError("\(path): \(flag) is \(value), not 0 or 1") }
            axis = value == 1 ? .input : .output
        }
        let layerKernel = ConvolutionKernels.kernel(of: canonical, base: base)
        var kernel: [Int] = []
        if isConvolution {
            guard let layerKernel else {
                throw AdapterError("\(path): module \(module.fileName): a convolution's (IA)³ vector, but \(canonical) is not a convolution tlkit knows the kernel of")
            }
            kernel = layerKernel
        } else if let layerKernel, base != nil {
            throw AdapterError("\(path): module \(module.fileName): a linear layer's (IA)³ vector, but \(canonical) is a \(layerKernel[0])×\(layerKernel[1]) convolution")
        }
        let area = max(1, kernel.reduce(1, *))
        var info = ModuleInfo(name: canonical, isOrtho: false, rank: 0, inFeatures: axis == .input ? length * area : 0,
                              outFeatures: axis == .output ? length : 0, dtype: file.header.tensor(named: module.tensors[.ia3Vector]!)!.dtype, kernel: kernel)
        info.ia3 = IA3Layout(axis: axis, spelling: spelling)
        return info
    }

    /// PEFT's axis: `feedforward_modules` in adapter_config.json scales the input; a linear layer's vector
    /// shape says it too ([1, in] input, [out, 1] output), and where both speak they must agree.
    static func peftAxis(_ module: ModuleKeys, shape: [Int], path: String) throws -> IA3Axis {
        let byShape: IA3Axis? = shape.count == 2 && shape[0] == 1 && shape[1] != 1 ? .input
            : shape.count == 2 && shape[1] == 1 && shape[0] != 1 ? .output : nil
        let config = try PeftIA3Config.beside(path)
        guard let feedforward = config.map({ $0.isFeedforward(module.fileName) }) else {
            guard let byShape else {
                throw AdapterError("\(path): module \(module.fileName): PEFT's (IA)³ vector of shape \(shape) does not say which axis it scales, and there is no \(PeftFamilyConfig.fileName) beside the weights (its feedforward_modules does)")
            }
            return byShape
        }
        let axis: IA3Axis = feedforward ? .input : .output
        if let byShape, byShape != axis {
            throw AdapterError("\(path): module \(module.fileName): its vector of shape \(shape) scales the \(byShape.rawValue), but feedforward_modules says the \(axis.rawValue)")
        }
        return axis
    }

    /// `module` with the dimension its vector does not cover taken from the checkpoint's weight `shape`
    /// ([out, in] or [out, in, kh, kw]); an error naming the module when they do not fit together.
    public static func resolved(_ module: ModuleInfo, shape: [Int]) throws -> ModuleInfo {
        guard let layout = module.ia3 else { return module }
        let kernel = Array(shape.dropFirst(2))
        guard shape.count >= 2, kernel == module.kernel else {
            throw AdapterError("\(module.name): an (IA)³ module for a \(module.isConvolution ? "convolution" : "linear layer") does not fit the checkpoint's weight of shape \(shape)")
        }
        let area = max(1, kernel.reduce(1, *))
        var info = module
        switch layout.axis {
        case .output:
            guard shape[0] == module.outFeatures else {
                throw AdapterError("\(module.name): (IA)³ vector of \(module.outFeatures) entries, but the checkpoint's weight has \(shape[0]) output rows (shape \(shape))")
            }
            info.inFeatures = shape[1] * area
        case .input:
            guard shape[1] * area == module.inFeatures else {
                throw AdapterError("\(module.name): (IA)³ vector of \(module.inFeatures / area) entries, but the checkpoint's weight has \(shape[1]) input channels (shape \(shape))")
            }
            info.outFeatures = shape[0]
        }
        return info
    }

    /// W' = W ⊙ s for `weight` ([rows, cols] row-major; a convolution's input channel owns `kernelArea`
    /// adjacent columns), each product rounded to float32 as the libraries' float32 merge rounds it.
    public static func merged(_ weight: [Float], rows: Int, cols: Int, kernelArea: Int, _ factors: IA3Factors) -> [Float] {
        precondition(weight.count == rows * cols)
        let s = factors.scale
        var out = weight
        switch factors.layout.axis {
        case .output:
            precondition(s.count == rows)
            for r in 0..<rows { for c in 0..<cols { out[r * cols + c] = weight[r * cols + c] * s[r] } }
        case .input:
            precondition(s.count * kernelArea == cols)
            for r in 0..<rows { for c in 0..<cols { out[r * cols + c] = weight[r * cols + c] * s[c / kernelArea] } }
        }
        return out
    }
}

extension BaseWeights {
    /// `module` resolved against the checkpoint's layer (`IA3.resolved`); a missing layer is an error.
    func resolvedIA3(_ module: ModuleInfo) throws -> ModuleInfo {
        let (componentName, path) = ModuleNames.split(module.name)
        guard let component = Component(rawValue: componentName), let shape = model.shape(component, path + ".weight") else {
            throw AdapterError("\(module.name): an (IA)³ module needs its base weight, and \(model.path) has no \(path).weight")
        }
        return try IA3.resolved(module, shape: shape)
    }

    /// The full SVD of ΔW = W' − W for resolved (IA)³ `module` ([out, in·kh·kw]).
    func differenceSVD(_ factors: IA3Factors, module: ModuleInfo) throws -> LowRankSVD {
        let w = try weight(of: module, for: "an (IA)³ module")
        let area = max(1, module.kernel.reduce(1, *))
        let merged = IA3.merged(w, rows: module.outFeatures, cols: module.inFeatures, kernelArea: area, factors)
        return try Self.svd(ofDifference: zip(merged, w).map { Double($0) - Double($1) }, module: module)
    }
}

/// PEFT's `IA3Config` as `save_pretrained` writes it: `feedforward_modules` is a list of names (a module
/// whose path ends with one is feedforward) or one regular expression the whole path must match.
struct PeftIA3Config {
    var names: [String]
    var pattern: String?

    /// The config beside `weights`, nil when there is none; an error when it is unreadable.
    static func beside(_ weights: String) throws -> PeftIA3Config? {
        let path = ((weights as NSString).deletingLastPathComponent as NSString).appendingPathComponent(PeftFamilyConfig.fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try parse(data, path: path)
    }

    static func parse(_ data: Data, path: String) throws -> PeftIA3Config {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AdapterError("\(path): not a JSON object")
        }
        if let type = object["peft_type"] as? String, type != "IA3" {
            throw AdapterError("\(path): peft_type is \(type), but the weights hold (IA)³ vectors (ia3_l)")
        }
        switch object["feedforward_modules"] {
        case nil, is NSNull: return PeftIA3Config(names: [], pattern: nil)
        case let text as String:
            guard (try? NSRegularExpression(pattern: text)) != nil else { throw AdapterError("\(path): feedforward_modules '\(text)' is not a regular expression") }
            return PeftIA3Config(names: [], pattern: text)
        case let list as [Any]:
            let names = list.compactMap { $0 as? String }
            guard names.count == list.count else { throw AdapterError("\(path): feedforward_modules holds something other than names") }
            return PeftIA3Config(names: names, pattern: nil)
        default:
            throw AdapterError("\(path): feedforward_modules is neither a list of names nor a regular expression")
        }
    }

    /// PEFT's test on the module's path in the model (the file name without `base_model.model.`): a
    /// regular expression matches all of it; a name matches its end, as a plain string suffix.
    func isFeedforward(_ fileName: String) -> Bool {
        let key = fileName.hasPrefix("base_model.model.") ? String(fileName.dropFirst("base_model.model.".count)) : fileName
        if let pattern, let regex = try? NSRegularExpression(pattern: "^(?:\(pattern))$") {
            return regex.firstMatch(in: key, range: NSRange(key.startIndex..., in: key)) != nil
        }
        return names.contains { key.hasSuffix($0) }
    }
}
