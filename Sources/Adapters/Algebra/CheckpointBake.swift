import Foundation
import SafeTensors
import SDXL

/// Bakes adapters into an SDXL checkpoint file (single-file or diffusers UNet), streaming tensor by
/// tensor: adapted weights get Σ wᵢ ΔWᵢ(t) in float32 and go back to the base's dtype; every other
/// tensor is copied byte for byte. A DoRA module replaces the weight it sees (the base plus the
/// adapters before it) by its merged weight, computed from it in float64; an (IA)³ module scales the
/// weight it sees (and, PEFT's on the output side, the bias) in float32, as both libraries do.
public enum CheckpointBake {
    public struct Report: Sendable {
        public var applied: [String] = []
        /// Modules the checkpoint has no weight for, with the reason.
        public var skipped: [(String, String)] = []
        public var untouchedTensors = 0
    }

    /// The base weights an adapter changes and the baked results are held to `policy`; tensors copied
    /// unchanged are not computed with and pass as they are.
    public static func bake(_ inputs: [AdapterMerge.Input], into basePath: String, output: String, atTimestep t: Double,
                            policy: NonFinitePolicy = .refuse) throws -> Report {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: basePath, isDirectory: &isDirectory), isDirectory.boolValue {
            throw AdapterError("\(basePath): give a checkpoint file (the single file, or unet/diffusion_pytorch_model.safetensors of a diffusers folder)")
        }
        let file = try SafeTensorsFile.open(basePath)
        let model: SDXLModel
        do { model = try SDXLModel(path: basePath, file: file) } catch {
            throw AdapterError("\(basePath): not an SDXL checkpoint (\(error))")
        }
        // Target tensor → contributions (input, module index, row block).
        /// `shape`: the module's weight as the checkpoint has it (an (IA)³ module's scaling needs it).
        struct Contribution { let input: Int; let module: Int; let rows: TensorMapping.Transform; var shape: [Int] = [] }
        var plan: [String: [Contribution]] = [:]
        // Bias tensor → the (IA)³ modules that scale it (PEFT's output side), in command-line order.
        var biasPlan: [String: [Contribution]] = [:]
        var report = Report()
        for (k, input) in inputs.enumerated() {
            for (i, module) in input.adapter.modules.enumerated() {
                let (componentName, path) = ModuleNames.split(module.name)
                guard let component = Component(rawValue: componentName), let located = model.locate(component, path + ".weight") else {
                    if module.magnitudeAxis != nil || module.ia3 != nil {
                        throw AdapterError("\(module.name): \(module.ia3 != nil ? "an (IA)³" : "a DoRA") module needs its base weight, and \(basePath) has no \(path).weight")
                    }
                    report.skipped.append((module.name, "the checkpoint has no such weight"))
                    continue
                }
                if let layout = module.ia3 {
                    let shape = model.shape(component, path + ".weight") ?? []
                    _ = try IA3.resolved(module, shape: shape)
                    plan[located.info.name, default: []].append(Contribution(input: k, module: i, rows: located.mapping?.transform ?? .identity, shape: shape))
                    if layout.scalesBias, let bias = model.locate(component, path + ".bias") {
                        biasPlan[bias.info.name, default: []].append(Contribution(input: k, module: i, rows: bias.mapping?.transform ?? .identity))
                    }
                    report.applied.append(module.name)
                    continue
                }
                guard model.shape(component, path + ".weight") == module.weightShape else {
                    throw AdapterError("\(module.name): adapter shape \(module.weightShape) does not match the checkpoint's \(model.shape(component, path + ".weight") ?? [])")
                }
                plan[located.info.name, default: []].append(Contribution(input: k, module: i, rows: located.mapping?.transform ?? .identity))
                report.applied.append(module.name)
            }
        }
        let specs = file.tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        var metadata = file.metadata
        metadata["modelspec.merged_from"] = inputs.map(\.label).joined(separator: ", ")
        try SafeTensorsWriter.write(to: output, metadata: metadata, tensors: specs) { info in
            let source = try file.info(info.name)
            defer { file.release(source) }
            if let scalings = biasPlan[info.name] {
                var bias = try file.floats(source)
                try policy.admit(bias, file: basePath, tensor: info.name)
                for c in scalings {
                    guard let factors = try inputs[c.input].adapter.ia3(c.module) else { continue }
                    let offset: Int
                    if case let .rows(index, count) = c.rows { offset = index * bias.count / count } else { offset = 0 }
                    applyIA3ToBias(factors, weight: inputs[c.input].weight, to: &bias, offset: offset)
                }
                let baked = FloatConversion.fromFloat32(bias, dtype: info.dtype)
                let modules = scalings.map { inputs[$0.input].adapter.modules[$0.module].name }
                try policy.admit(encoded: baked, dtype: info.dtype, tensor: info.name, module: Array(Set(modules)).sorted().joined(separator: ", "))
                return baked
            }
            guard let contributions = plan[info.name] else {
                report.untouchedTensors += 1
                return Array(file.rawBytes(source))
            }
            var weight = try file.floats(source)
            try policy.admit(weight, file: basePath, tensor: info.name)
            // In command-line order: a DoRA module rescales the weight as the adapters before it left it.
            for c in contributions {
                let adapter = inputs[c.input].adapter
                let offset: Int
                if case let .rows(index, count) = c.rows { offset = index * weight.count / count } else { offset = 0 }
                if let dora = try adapter.dora(c.module) {
                    applyDoRA(dora, weight: inputs[c.input].weight, to: &weight, offset: offset)
                    continue
                }
                if let ia3 = try adapter.ia3(c.module) {
                    applyIA3(ia3, shape: c.shape, weight: inputs[c.input].weight, to: &weight, offset: offset)
                    continue
                }
                let delta = try adapter.delta(c.module, at: adapter.schedule == nil ? nil : t)
                let w = Float(inputs[c.input].weight)
                for j in 0..<delta.count { weight[offset + j] += w * delta[j] }
            }
            let baked = FloatConversion.fromFloat32(weight, dtype: info.dtype)
            let modules = contributions.map { inputs[$0.input].adapter.modules[$0.module].name }
            try policy.admit(encoded: baked, dtype: info.dtype, tensor: info.name, module: Array(Set(modules)).sorted().joined(separator: ", "))
            return baked
        }
        return report
    }

    /// (IA)³: W ← W' = W ⊙ s on the module's rows of `weight` ([out, in, kh, kw] `shape`), blended as DoRA is
    /// at a weight other than 1.
    static func applyIA3(_ factors: IA3Factors, shape: [Int], weight w: Double, to weight: inout [Float], offset: Int) {
        let rows = shape[0], cols = shape.dropFirst().reduce(1, *), area = shape.dropFirst(2).reduce(1, *)
        let current = Array(weight[offset..<(offset + rows * cols)])
        let merged = IA3.merged(current, rows: rows, cols: cols, kernelArea: area, factors)
        for j in 0..<(rows * cols) {
            weight[offset + j] = blended(current[j], Double(merged[j]), weight: w)
        }
    }

    /// PEFT's (IA)³ on the output side scales the bias as it scales the rows: b ← b ⊙ s (blended at w ≠ 1).
    static func applyIA3ToBias(_ factors: IA3Factors, weight w: Double, to bias: inout [Float], offset: Int) {
        let s = factors.scale
        for r in 0..<s.count where offset + r < bias.count {
            bias[offset + r] = blended(bias[offset + r], Double(bias[offset + r] * s[r]), weight: w)
        }
    }

    /// What a base-relative module (DoRA, (IA)³) leaves of a value at user weight w: its merged value at 1,
    /// else the linear blend current + w·(merged − current).
    @inline(__always) static func blended(_ current: Float, _ merged: Double, weight w: Double) -> Float {
        w == 1 ? Float(merged) : Float(Double(current) + w * (merged - Double(current)))
    }

    /// W ← W + w·(W' − W) on the module's rows of `weight`: W' itself at weight 1, and, as ComfyUI applies
    /// a DoRA patch's strength, a linear blend otherwise.
    static func applyDoRA(_ factors: DoRAFactors, weight w: Double, to weight: inout [Float], offset: Int) {
        let count = factors.lowRank.outFeatures * factors.lowRank.inFeatures
        let current = Array(weight[offset..<(offset + count)])
        let merged = DoRA.merged(current, factors)
        for j in 0..<count {
            weight[offset + j] = blended(current[j], merged[j], weight: w)
        }
    }
}
