import Engine
import Foundation
import SafeTensors
import SDXL

/// Where the VAE's weights come from: diffusers AutoencoderKL names → Float32 tensors, plus the
/// component's parsed config.json when there is one.
///
/// Sources: the `vae` component of an SDXL checkpoint (either layout), or a standalone VAE (`--vae PATH`):
/// a diffusers `vae` folder, a pipeline folder, or a `.safetensors` file in diffusers or LDM naming
/// (with or without the `first_stage_model.` prefix of a full checkpoint).
public struct VAEWeightSource: @unchecked Sendable {
    /// Path used in messages.
    public let path: String
    public let config: [String: Any]?
    /// The arithmetic the VAE's wide convolutions are built for (see `VAEConv`).
    public var precision = Precision.fp32
    private let shapeOf: (String) -> [Int]?
    private let valuesOf: (String) throws -> [Float]

    public init(path: String, config: [String: Any]?, shape: @escaping (String) -> [Int]?,
                load: @escaping (String) throws -> [Float]) {
        self.path = path
        self.config = config
        self.shapeOf = shape
        self.valuesOf = load
    }

    /// The VAE of an SDXL checkpoint (single file or diffusers pipeline folder).
    public init(model: SDXLModel) {
        self.init(path: model.path, config: model.configs[.vae],
                  shape: { model.shape(.vae, $0) }, load: { try model.floats(.vae, $0) })
    }

    /// A standalone VAE: a diffusers `vae` folder, a pipeline folder with `vae/`, or one safetensors file.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw VAEError.notAVAE(path: path, reason: "no such file or folder")
        }
        guard isDirectory.boolValue else {
            try self.init(file: try SafeTensorsFile.open(path), config: nil, path: path)
            return
        }
        let folder = FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("vae"))
            ? (path as NSString).appendingPathComponent("vae") : path
        let candidates = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"]
            .map { (folder as NSString).appendingPathComponent($0) }
        guard let weights = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw VAEError.notAVAE(path: path, reason: "a folder without VAE weights (expected diffusion_pytorch_model.safetensors)")
        }
        var config: [String: Any]?
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        if let data = FileManager.default.contents(atPath: configPath) {
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw VAEError.badConfig(path: configPath, reason: "config.json is not a JSON object")
            }
            config = json
        }
        try self.init(file: try SafeTensorsFile.open(weights), config: config, path: folder)
    }

    /// One safetensors file: diffusers names, or LDM names translated by the SDXL key map.
    /// `path` names the VAE in messages (the folder when the file came from one).
    private init(file: SafeTensorsFile, config: [String: Any]?, path: String) throws {
        let prefix = Component.vae.singleFilePrefix
        let prefixed = file.tensors.contains { $0.name.hasPrefix(prefix) }
        var local: [String: TensorInfo] = [:]
        for info in file.tensors {
            if prefixed {
                if info.name.hasPrefix(prefix) { local[String(info.name.dropFirst(prefix.count))] = info }
            } else {
                local[info.name] = info
            }
        }
        var index: [String: TensorInfo] = [:]
        if local.keys.contains(where: { $0.hasPrefix("encoder.down.") || $0.hasPrefix("decoder.up.") }) {
            let map = KeyMap(component: .vae, singleFileNames: Array(local.keys))
            for (name, info) in local {
                for mapping in map.diffusers(forSingleFile: name) { index[mapping.diffusersName] = info }
            }
        } else {
            index = local
        }
        guard index.keys.contains(where: { $0.hasPrefix("encoder.") }) || index.keys.contains(where: { $0.hasPrefix("decoder.") }) else {
            throw VAEError.notAVAE(path: file.path, reason: "no VAE tensors (expected encoder.* / decoder.*, or first_stage_model.*)")
        }
        self.init(path: path, config: config, shape: { index[$0]?.shape },
                  load: { name in
                      guard let info = index[name] else { throw VAEError.missingWeight(path: path, name: name) }
                      return try file.floats(info)
                  })
    }

    // MARK: Lookup

    /// The stored name of `name`: itself, or the attention name diffusers used before 0.14
    /// (`query`, `key`, `value`, `proj_attn`), which older VAE files still carry.
    private func storedName(_ name: String) -> String? {
        if shapeOf(name) != nil { return name }
        for (current, legacy) in [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")]
        where name.contains(current) {
            let old = name.replacingOccurrences(of: current, with: legacy)
            if shapeOf(old) != nil { return old }
        }
        return nil
    }

    public func shape(_ name: String) -> [Int]? { storedName(name).flatMap(shapeOf) }

    public func has(_ name: String) -> Bool { storedName(name) != nil }

    /// The tensor `name` with exactly `expected` elements laid out as `expected`. A stored shape that
    /// differs only by trailing 1s is accepted: LDM keeps attention projections as 1×1 convolutions
    /// [C, C, 1, 1] where diffusers has Linear weights [C, C].
    func tensor(_ name: String, _ expected: [Int]) throws -> Tensor<Float> {
        guard let stored = storedName(name), let shape = shapeOf(stored) else {
            throw VAEError.missingWeight(path: path, name: name)
        }
        guard Self.dropTrailingOnes(shape) == Self.dropTrailingOnes(expected) else {
            throw VAEError.badShape(path: path, name: name, expected: expected, got: shape)
        }
        return Tensor(shape: expected, values: try valuesOf(stored))
    }

    private static func dropTrailingOnes(_ shape: [Int]) -> [Int] {
        var s = shape
        while s.count > 1, s.last == 1 { s.removeLast() }
        return s
    }
}
