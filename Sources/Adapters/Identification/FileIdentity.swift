import Foundation
import SafeTensors
import SDXL

/// What any safetensors file (or pipeline folder) is: the facts `inspect` prints and the catalog indexes.
public struct FileIdentity: Sendable {
    public var path: String
    public var kind: FileKind
    /// `sgm` / `diffusers` for checkpoints; an `AdapterFormat` raw value for adapters.
    public var format: String?
    public var base: String?
    /// The SDXL-derived model metadata names (`pony`, `illustrious`, `noobai`).
    public var derivative: String?
    /// Why `base` is unknown, or where metadata disagrees with the tensors (Bases/).
    public var baseNote: String?
    public var dtypes: [String: Int] = [:]
    public var parameters: Int = 0
    public var tensorCount: Int = 0
    // Checkpoints
    public var components: [Component: Bool]?
    public var unetConfig: UNetConfig?
    public var configError: String?
    // Adapters
    public var modules: Int?
    public var textEncoderModules: Int?
    public var ranks: [Int] = []
    public var alphas: [Double] = []
    public var metadata: [(String, String)] = []
    public var trigger: String?
    public var method: AdapterMethod?
    public var schedule: RankSchedule?
    /// Why the schedule could not be attached (an official checkpoint without hparams, stale metadata).
    public var scheduleNote: String?
    public var unsupportedVariant: String?
    /// `lora`, `locon`, `loha`, `lokr`, `dora`, `ia3` (Families/).
    public var family: String?
    /// (IA)³ modules by the axis their vector scales (`output`, `input`); empty for other families.
    public var ia3Axes: [String: Int] = [:]
    public var unknownKeys: [String] = []
    public var hparamsPath: String?
    /// FLUX.1/SD3 modules on a fused q, k, v projection: the file's name, the canonical one, and the
    /// diffusers layers it splits into (docs/bases.md, "Fused projections").
    public var fusedProjections: [FusedProjection] = []
}

public struct FusedProjection: Sendable, Equatable {
    public let module: String
    public let canonical: String
    public let parts: [String]
}

public enum FileIdentifier {
    /// Describes a file or folder; throws only when it cannot be read at all.
    public static func identify(_ path: String) throws -> FileIdentity {
        var isDirectory: ObjCBool = false
        if path != "-", FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return try identifyFolder(path)
        }
        return try identify(file: SafeTensorsFile.open(path), path: path)
    }

    static func identifyFolder(_ path: String) throws -> FileIdentity {
        // Training folders, checkpoint-N/ and PEFT folders are accepted as the adapter file they hold.
        if let file = AdapterLocation.resolve(path), file != path {
            var identity = try identify(file: SafeTensorsFile.open(file), path: file)
            identity.path = path
            return identity
        }
        let model = try SDXLModel.open(path)
        var identity = FileIdentity(path: path, kind: .checkpoint, format: SDXLModel.Layout.diffusers.rawValue)
        for file in model.files { accumulate(file, into: &identity) }
        describeCheckpoint(model, into: &identity)
        return identity
    }

    public static func identify(file: SafeTensorsFile, path: String) throws -> FileIdentity {
        file.adviseRandomAccess()
        var identity = FileIdentity(path: path, kind: .unknown)
        accumulate(file, into: &identity)
        let names = file.tensors.map(\.name)
        if let model = try? SDXLModel(path: path, file: file) {
            identity.kind = .checkpoint
            identity.format = model.layout.rawValue
            describeCheckpoint(model, into: &identity)
            return identity
        }
        identity.metadata = file.header.metadataEntries
            .filter { $0.key.hasPrefix("ss_") || $0.key.hasPrefix("modelspec.") || $0.key.hasPrefix("tlora.") || $0.key.hasPrefix("sshs_") }
            .map { ($0.key, $0.value) }
        guard let keys = AdapterKeys.group(names) else {
            identity.unknownKeys = names
            return identity
        }
        AdapterDescription.describe(keys: keys, file: file, path: path, into: &identity)
        return identity
    }

    static func accumulate(_ file: SafeTensorsFile, into identity: inout FileIdentity) {
        for info in file.tensors {
            identity.dtypes[info.dtype.rawValue, default: 0] += 1
            identity.parameters += info.elementCount
        }
        identity.tensorCount += file.tensors.count
    }

    static func describeCheckpoint(_ model: SDXLModel, into identity: inout FileIdentity) {
        var components: [Component: Bool] = [:]
        for c in Component.allCases { components[c] = model.components.contains(c) }
        identity.components = components
        identity.unetConfig = model.unetConfig
        identity.configError = model.unetConfigError
        // SDXL: a text-time add embedding and cross-attention only below the first level.
        if let config = model.unetConfig, config.structure.downDepths.first == 0 { identity.base = "sdxl" }
    }
}
