import Foundation
import SafeTensors

/// Schedule facts given on the command line (`--max-rank`, `--min-rank`, `--rank-alpha`).
public struct ScheduleFlags: Sendable, Equatable {
    public var maxRank: Int?
    public var minRank: Int?
    public var rankAlpha: Double?

    public init(maxRank: Int? = nil, minRank: Int? = nil, rankAlpha: Double? = nil) {
        self.maxRank = maxRank
        self.minRank = minRank
        self.rankAlpha = rankAlpha
    }

    public var isEmpty: Bool { maxRank == nil && minRank == nil && rankAlpha == nil }
}

/// Reads every adapter flavour into the one adapter model (canonical names, factors loaded lazily).
public enum AdapterReader {
    /// `acceptDoRA`: keep DoRA and (IA)³ modules (`Adapter.dora(_:)`, `Adapter.ia3(_:)`) for a caller that
    /// has the base weights; otherwise such a file is refused, naming a module.
    public static func read(_ path: String, flags: ScheduleFlags = ScheduleFlags(), acceptDoRA: Bool = false) throws -> Adapter {
        guard let file = AdapterLocation.resolve(path) else {
            throw AdapterError("\(path): a folder without an adapter file (expected checkpoint-N/, adapter.safetensors or one .safetensors file)")
        }
        return try read(file: SafeTensorsFile.open(file), path: file, flags: flags, acceptDoRA: acceptDoRA)
    }

    public static func read(file: SafeTensorsFile, path: String, flags: ScheduleFlags = ScheduleFlags(), acceptDoRA: Bool = false) throws -> Adapter {
        let hparamsPath = OfficialHparams.locate(forWeights: path)
        return try read(file: file, path: path, flags: flags, acceptDoRA: acceptDoRA, hparamsPath: hparamsPath,
                        hparams: { try hparamsPath.map(OfficialHparams.load) })
    }

    /// `hparams` gives the official layout's hparams.yml when there is one; asked only for that layout.
    static func read(file: SafeTensorsFile, path: String, flags: ScheduleFlags, acceptDoRA: Bool = false, hparamsPath: String? = nil,
                     hparams loadHparams: () throws -> OfficialHparams?) throws -> Adapter {
        guard let keys = AdapterKeys.group(file.tensors.map(\.name)) else {
            throw AdapterError("\(path): not a LoRA or T-LoRA adapter (no adapter tensors found)")
        }
        let meaning = try AdapterInterpretation.interpret(keys: keys, file: file, path: path, flags: flags, strictness: .strict,
                                                          acceptDoRA: acceptDoRA, hparamsPath: hparamsPath, hparams: loadHparams)
        var facts = file.metadata
        if meaning.format == .tloraOfficial {
            // The official trainer's facts live in hparams.yml and the checkpoint folder's name.
            let folder = ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent
            if folder.hasPrefix("checkpoint-"), let steps = Int(folder.dropFirst("checkpoint-".count)) { facts["tlora.steps"] = String(steps) }
            if let token = meaning.hparams?.placeholderToken { facts["tlora.token"] = token }
            if let className = meaning.hparams?.className { facts["tlora.class"] = className }
            if let sig = meaning.hparams?.sigType { facts["tlora.init"] = sig }
        }
        var adapter = Adapter(format: meaning.format, method: meaning.method, schedule: meaning.schedule,
                              componentsPerRank: meaning.componentsPerRank, modules: meaning.modules, metadata: facts,
                              unknownKeys: meaning.unknownKeys.sorted(),
                              source: FileFactors(file: file, path: path, modules: meaning.moduleKeys, infos: meaning.modules, format: meaning.format))
        adapter.warnings = meaning.warnings
        adapter.origin = path
        adapter.base = meaning.base
        adapter.nonFinite = nonFiniteFindings(meaning.moduleKeys, canonical: meaning.modules.map(\.name), in: file, path: path)
        return adapter
    }

    /// `base`: the adapter's base model, whose layer table gives the kernel of convolutions that LoHa and
    /// LoKr factors flatten (`ConvolutionKernels`).
    static func describe(_ module: ModuleKeys, canonical: String, file: SafeTensorsFile, path: String, format: AdapterFormat,
                         base: BaseArchitecture? = nil) throws -> ModuleInfo {
        if IA3.isIA3(module) {
            return try IA3.describe(module, canonical: canonical, file: file, path: path, format: format, base: base)
        }
        if module.tensors[.magnitude] != nil, let family = Families.kind(of: module) {
            let name = ["loha": "LoHa", "lokr": "LoKr"][family] ?? "Tucker LoCon"
            throw AdapterError("\(path): module \(module.fileName): DoRA on a LyCORIS \(name) module is not supported (only on LoRA/LoCon modules)")
        }
        let tensors = FamilyTensors(module: module, file: file, path: path, format: format)
        if let family = try Families.shape(tensors) {
            let kernel = try ConvolutionKernels.resolve(family, canonical: canonical, base: base, path: path, module: module.fileName)
            // The family's scale is folded into the exact factors, so alpha = rank (scale 1).
            var info = ModuleInfo(name: canonical, isOrtho: false, rank: family.rank, inFeatures: family.inFeatures,
                                  outFeatures: family.outFeatures, dtype: tensors.dtype, alpha: Float(family.rank), kernel: kernel)
            info.family = family.family
            return info
        }
        func shape(_ role: FactorRole) throws -> [Int] {
            guard let name = module.tensors[role], let info = file.header.tensor(named: name) else {
                throw AdapterError("\(path): module \(module.fileName) has no \(role.rawValue) tensor")
            }
            guard info.dtype.isConvertibleToFloat || role == .alpha else {
                throw AdapterError("\(path): tensor \(name) has dtype \(info.dtype.rawValue), not a float type")
            }
            if let dimension = info.shape.first(where: { $0 > FactorLimits.maxDimension }) {
                throw AdapterError("\(path): tensor \(name) has shape \(info.shape): dimension \(dimension) exceeds \(FactorLimits.maxDimension), larger than any layer of a supported model (refused before reading it)")
            }
            return info.shape
        }
        let isOrtho = module.tensors[.q] != nil
        if isOrtho, format == .kohya, module.tensors[.q0] == nil {
            return try LycorisTLoRA.describe(module, canonical: canonical, file: file, path: path)
        }
        let down = try shape(isOrtho ? .q : .down), up = try shape(isOrtho ? .p : .up)
        // A convolution module (LoCon): down [r, Cin, kh, kw], up [Cout, r, 1, 1].
        let isConvolution = !isOrtho && down.count == 4 && up.count == 4 && up[2] == 1 && up[3] == 1
        guard (down.count == 2 && up.count == 2) || isConvolution else {
            throw AdapterError("\(path): module \(module.fileName) has factors of shapes \(down) and \(up), neither a linear nor a convolution LoRA")
        }
        guard down[0] == up[1] else {
            throw AdapterError("\(path): module \(module.fileName): down has rank \(down[0]) but up has rank \(up[1])")
        }
        if isOrtho {
            for (role, expected) in [(FactorRole.q0, down), (.p0, up)] where try shape(role) != expected {
                throw AdapterError("\(path): module \(module.fileName): \(role.rawValue) shape \(try shape(role)) differs from \(expected)")
            }
            for role in [FactorRole.lambda, .lambda0] where try shape(role).reduce(1, *) != down[0] {
                throw AdapterError("\(path): module \(module.fileName): \(role.rawValue) has \(try shape(role).reduce(1, *)) entries, rank is \(down[0])")
            }
        }
        let dtype = file.header.tensor(named: module.tensors[isOrtho ? .q : .down]!)!.dtype
        var info = ModuleInfo(name: canonical, isOrtho: isOrtho, rank: down[0], inFeatures: down.dropFirst().reduce(1, *),
                              outFeatures: up[0], dtype: dtype, kernel: isConvolution ? Array(down.suffix(2)) : [])
        if !isOrtho { info.alpha = try FileFactors.alpha(keys: module, rank: down[0], file: file, format: format).map(Float.init) }
        if module.tensors[.magnitude] != nil {
            guard !isOrtho else { throw AdapterError("\(path): module \(module.fileName): a magnitude vector beside T-LoRA factors") }
            info.magnitudeAxis = try DoRA.axis(magnitudeShape: shape(.magnitude), of: info, format: format, path: path, module: module.fileName)
        }
        return info
    }

    /// Each module holding NaN or infinity (the first such tensor named), in module order, for
    /// `NonFinitePolicy` to judge. Modules are scanned on all cores; each tensor's pages are released
    /// once scanned.
    static func nonFiniteFindings(_ entries: [ModuleKeys], canonical: [String], in file: SafeTensorsFile, path: String) -> [NonFiniteFinding] {
        let found = ConcurrentSlots<NonFiniteFinding>(count: entries.count)
        DispatchQueue.concurrentPerform(iterations: entries.count) { index in
            let module = entries[index]
            for name in module.tensors.values.sorted() {
                guard let info = file.header.tensor(named: name), info.dtype.isConvertibleToFloat else { continue }
                defer { file.release(info) }
                if file.containsNonFinite(info) {
                    found.set(index, NonFiniteFinding(path: path, module: canonical[index], moduleInFile: module.fileName, tensor: name))
                    return
                }
            }
        }
        return found.values.compactMap { $0 }
    }
}

/// Bounds on adapter factor shapes, checked when the header is read so that a crafted (say sparse) file
/// cannot make a command allocate and compute on terabytes. SDXL's widest layer has 10,240 features;
/// the bound leaves room for larger models while refusing what no model has.
enum FactorLimits {
    static let maxDimension = 65_536
}

/// Loads one module's factors from the mapped file when asked.
struct FileFactors: FactorSource, @unchecked Sendable {
    let file: SafeTensorsFile
    let path: String
    let modules: [ModuleKeys]
    let infos: [ModuleInfo]
    let format: AdapterFormat

    func factors(_ index: Int) throws -> Factors {
        let keys = modules[index], info = infos[index]
        if info.magnitudeAxis != nil { throw AdapterError("\(path): \(DoRAFactors.refusal(module: keys.fileName))") }
        if info.ia3 != nil { throw AdapterError("\(path): \(IA3Factors.refusal(module: keys.fileName))") }
        if info.frozenFromBase { throw AdapterError("\(path): \(LycorisTLoRA.refusal(module: keys.fileName))") }
        if let exact = try Families.factors(FamilyTensors(module: keys, file: file, path: path, format: format)) { return exact }
        func load(_ role: FactorRole) throws -> [Float] {
            let tensor = try file.info(keys.tensors[role]!)
            defer { file.release(tensor) }
            return try file.floats(tensor)
        }
        if info.isOrtho {
            return .ortho(Ortho(q: try load(.q), p: try load(.p), lambda: try load(.lambda), q0: try load(.q0), p0: try load(.p0),
                                lambda0: try load(.lambda0), rank: info.rank, inFeatures: info.inFeatures, outFeatures: info.outFeatures))
        }
        return .lowRank(LowRank(down: try load(.down), up: try load(.up), rank: info.rank, inFeatures: info.inFeatures,
                                outFeatures: info.outFeatures, alpha: info.alpha))
    }

    func lycorisTLoRA(_ index: Int) throws -> LycorisTLoRAFactors? {
        let keys = modules[index], info = infos[index]
        guard info.frozenFromBase else { return nil }
        func load(_ role: FactorRole) throws -> [Float] {
            let tensor = try file.info(keys.tensors[role]!)
            defer { file.release(tensor) }
            return try file.floats(tensor)
        }
        return LycorisTLoRAFactors(q: try load(.q), p: try load(.p), lambda: try load(.lambda), alpha: info.alpha ?? Float(info.rank),
                                   rank: info.rank, inFeatures: info.inFeatures, outFeatures: info.outFeatures)
    }

    func dora(_ index: Int) throws -> DoRAFactors? {
        let keys = modules[index], info = infos[index]
        guard let axis = info.magnitudeAxis else { return nil }
        func load(_ role: FactorRole) throws -> [Float] {
            let tensor = try file.info(keys.tensors[role]!)
            defer { file.release(tensor) }
            return try file.floats(tensor)
        }
        let lowRank = LowRank(down: try load(.down), up: try load(.up), rank: info.rank, inFeatures: info.inFeatures,
                              outFeatures: info.outFeatures, alpha: info.alpha)
        return DoRAFactors(lowRank: lowRank, magnitude: try load(.magnitude), axis: axis, kernelArea: max(1, info.kernel.reduce(1, *)))
    }

    func ia3(_ index: Int) throws -> IA3Factors? {
        let keys = modules[index], info = infos[index]
        guard let layout = info.ia3 else { return nil }
        let tensor = try file.info(keys.tensors[.ia3Vector]!)
        defer { file.release(tensor) }
        return IA3Factors(vector: try file.floats(tensor), layout: layout)
    }

    /// The module's alpha as its format stores it (kohya/tlkit `.alpha` tensors, PEFT config).
    static func alpha(keys: ModuleKeys, rank: Int, file: SafeTensorsFile, format: AdapterFormat) throws -> Double? {
        switch format {
        case .kohya, .tlkit:
            guard let name = keys.tensors[.alpha], let info = file.header.tensor(named: name) else { return nil }
            return try file.scalar(info)
        case .peft:
            return PeftMetadata(file.metadata["lora_adapter_metadata"]).alpha(forModule: keys.fileName, rank: rank)
        default:
            return nil  // diffusers, attn-procs and official layers have no scale
        }
    }
}
