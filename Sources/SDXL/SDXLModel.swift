import Foundation
import SafeTensors

/// An SDXL-architecture model on disk: a single-file (SGM) checkpoint, a diffusers UNet file or a
/// diffusers pipeline folder. Tensors are addressed by component and diffusers name whatever the layout,
/// and read lazily from memory-mapped files.
public final class SDXLModel: @unchecked Sendable {
    public enum Layout: String, Sendable, Codable {
        /// One file with `model.diffusion_model.`, `conditioner.embedders.*`, `first_stage_model.` prefixes.
        case singleFile = "sgm"
        /// Diffusers naming: a pipeline folder or one component's file.
        case diffusers
    }

    public struct Located {
        public let file: SafeTensorsFile
        public let info: TensorInfo
        public let mapping: TensorMapping?
    }

    public let path: String
    public let layout: Layout
    public let unetStructure: UNetStructure?
    public private(set) var unetConfig: UNetConfig?
    /// Why the UNet configuration could not be inferred, when it could not.
    public private(set) var unetConfigError: String?
    private var index: [Component: [String: Located]] = [:]
    /// Parsed `config.json` of each component of a pipeline folder.
    public private(set) var configs: [Component: [String: Any]] = [:]
    /// Every file opened (one for single files).
    public let files: [SafeTensorsFile]

    public var components: [Component] { Component.allCases.filter { !(index[$0]?.isEmpty ?? true) } }

    public func tensorNames(_ component: Component) -> [String] { (index[component] ?? [:]).keys.sorted() }

    public func locate(_ component: Component, _ name: String) -> Located? { index[component]?[name] }

    /// Shape of a tensor as diffusers names it (after any reshape or split).
    public func shape(_ component: Component, _ name: String) -> [Int]? {
        guard let located = locate(component, name) else { return nil }
        return SDXLModel.shape(of: located)
    }

    /// A tensor as Float32, in diffusers layout (transposed, split or reshaped as the key map says).
    public func floats(_ component: Component, _ name: String) throws -> [Float] {
        guard let located = locate(component, name) else {
            throw SafeTensorsError(file: path, tensor: "\(component.rawValue).\(name)", reason: .tensorNotFound)
        }
        let values = try located.file.floats(located.info)
        // Callers keep their own Float32 copy: drop the mapped pages so a loaded model is not counted twice.
        located.file.release(located.info)
        switch located.mapping?.transform ?? .identity {
        case .identity, .reshape:
            return values
        case let .rows(part, count):
            let rows = located.info.shape[0] / count
            let width = located.info.elementCount / max(1, located.info.shape[0])
            return Array(values[(part * rows * width)..<((part + 1) * rows * width)])
        case .transpose:
            let (r, c) = (located.info.shape[0], located.info.shape[1])
            var out = [Float](repeating: 0, count: values.count)
            for i in 0..<r { for j in 0..<c { out[j * r + i] = values[i * c + j] } }
            return out
        }
    }

    static func shape(of located: Located) -> [Int] {
        let s = located.info.shape
        switch located.mapping?.transform ?? .identity {
        case .identity: return s
        case .reshape: return Array(s.prefix(2))
        case let .rows(_, count): return [s[0] / count] + s.dropFirst()
        case .transpose: return s.count == 2 ? [s[1], s[0]] : s
        }
    }

    // MARK: Opening

    public enum OpenError: Error, CustomStringConvertible {
        case notAModel(String, String)

        public var description: String {
            switch self { case let .notAModel(path, why): return "\(path): \(why)" }
        }
    }

    /// Opens a single file or a pipeline folder.
    public static func open(_ path: String) throws -> SDXLModel {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return try openPipeline(path)
        }
        return try SDXLModel(path: path, file: SafeTensorsFile.open(path))
    }

    /// Wraps an already opened file (single-file checkpoint or diffusers UNet file).
    public init(path: String, file: SafeTensorsFile) throws {
        self.path = path
        self.files = [file]
        let names = file.tensors.map(\.name)
        if names.contains(where: { $0.hasPrefix(Component.unet.singleFilePrefix) }) {
            layout = .singleFile
            let unetNames = names.compactMap { $0.dropPrefix(Component.unet.singleFilePrefix) }
            unetStructure = UNetStructure.fromSingleFile(unetNames)
            for component in Component.allCases {
                let local = names.compactMap { $0.dropPrefix(component.singleFilePrefix) }
                let map = KeyMap(component: component, singleFileNames: local, unetStructure: unetStructure)
                var entries: [String: Located] = [:]
                for name in local where !name.hasSuffix("position_ids") {
                    guard let info = file.header.tensor(named: component.singleFilePrefix + name) else { continue }
                    for mapping in map.diffusers(forSingleFile: name) {
                        let canonical = SDXLModel.canonicalTextName(mapping.diffusersName, component: component)
                        entries[canonical] = Located(file: file, info: info, mapping: mapping)
                    }
                }
                index[component] = entries
            }
        } else if names.contains("conv_in.weight"), names.contains(where: { $0.hasPrefix("down_blocks.") }) {
            layout = .diffusers
            unetStructure = UNetStructure.fromDiffusers(names)
            index[.unet] = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, Located(file: file, info: $0, mapping: nil)) })
        } else {
            throw OpenError.notAModel(path, "not an SDXL checkpoint: no `model.diffusion_model.` tensors and no diffusers UNet tensors")
        }
        inferUNetConfig()
    }

    private init(pipeline path: String, files: [SafeTensorsFile], index: [Component: [String: Located]], configs: [Component: [String: Any]]) {
        self.path = path
        self.layout = .diffusers
        self.files = files
        self.index = index
        self.configs = configs
        unetStructure = UNetStructure.fromDiffusers((index[.unet] ?? [:]).keys)
        inferUNetConfig()
    }

    private func inferUNetConfig() {
        guard let structure = unetStructure, index[.unet]?.isEmpty == false else { return }
        do {
            unetConfig = try UNetConfig.infer(structure: structure, shape: { self.shape(.unet, $0) }, config: configs[.unet])
        } catch {
            unetConfigError = "\(error)"
        }
    }

    private static func openPipeline(_ path: String) throws -> SDXLModel {
        let fm = FileManager.default
        var files: [SafeTensorsFile] = []
        var index: [Component: [String: Located]] = [:]
        var configs: [Component: [String: Any]] = [:]
        for component in Component.allCases {
            let folder = (path as NSString).appendingPathComponent(component.folderName)
            guard let weights = weightFiles(in: folder) else { continue }
            var entries: [String: Located] = [:]
            for weightPath in weights {
                let file = try SafeTensorsFile.open(weightPath)
                files.append(file)
                for info in file.tensors where !info.name.hasSuffix("position_ids") {
                    entries[canonicalTextName(info.name, component: component)] = Located(file: file, info: info, mapping: nil)
                }
            }
            index[component] = entries
            let configPath = (folder as NSString).appendingPathComponent("config.json")
            if let data = fm.contents(atPath: configPath),
               let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                configs[component] = json
            }
        }
        guard index[.unet] != nil else {
            let hasIndex = fm.fileExists(atPath: (path as NSString).appendingPathComponent("model_index.json"))
            throw OpenError.notAModel(path, hasIndex
                ? "a diffusers pipeline folder without UNet weights (expected unet/diffusion_pytorch_model.safetensors)"
                : "a directory that is not a diffusers pipeline (no unet/ folder with safetensors weights)")
        }
        return SDXLModel(pipeline: path, files: files, index: index, configs: configs)
    }

    /// The weight files of one component folder: the plain file, else the fp16 variant, else shards.
    static func weightFiles(in folder: String) -> [String]? {
        let fm = FileManager.default
        for name in ["diffusion_pytorch_model.safetensors", "model.safetensors",
                     "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"] {
            let candidate = (folder as NSString).appendingPathComponent(name)
            if fm.fileExists(atPath: candidate) { return [candidate] }
        }
        guard let listing = try? fm.contentsOfDirectory(atPath: folder) else { return nil }
        let shards = listing.filter { $0.hasSuffix(".safetensors") && $0.contains("-of-") }.sorted()
        return shards.isEmpty ? nil : shards.map { (folder as NSString).appendingPathComponent($0) }
    }

    /// Text-encoder names always carry the `text_model.` level inside tlkit (newer transformers drops it).
    static func canonicalTextName(_ name: String, component: Component) -> String {
        guard component == .textEncoder || component == .textEncoder2 else { return name }
        if name.hasPrefix("text_model.") || name.hasPrefix("text_projection") || name == "logit_scale" { return name }
        return "text_model." + name
    }
}

extension String {
    func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
