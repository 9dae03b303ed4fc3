import SafeTensors

/// LyCORIS families whose ΔW is an exact low-rank product once written out (docs/families.md):
/// each reads its tensors from the header (shapes only) and from the data (factors) through this view.
struct FamilyTensors {
    let module: ModuleKeys
    let file: SafeTensorsFile
    let path: String
    /// kohya names (LyCORIS: `.alpha` tensors, its scale rules) or PEFT (`adapter_config.json`).
    var format: AdapterFormat = .kohya

    func has(_ role: FactorRole) -> Bool { module.tensors[role] != nil }

    /// The shape of `role`, checked for a float dtype and bounded before anything is read.
    func dimensions(_ role: FactorRole) throws -> [Int] {
        guard let name = module.tensors[role], let info = file.header.tensor(named: name) else {
            throw AdapterError("\(path): module \(module.fileName) has no \(role.rawValue) tensor")
        }
        guard info.dtype.isConvertibleToFloat else {
            throw AdapterError("\(path): tensor \(name) has dtype \(info.dtype.rawValue), not a float type")
        }
        if let dimension = info.shape.first(where: { $0 > FactorLimits.maxDimension }) {
            throw AdapterError("\(path): tensor \(name) has shape \(info.shape): dimension \(dimension) exceeds \(FactorLimits.maxDimension) (refused before reading it)")
        }
        return info.shape
    }

    /// The 2-D shape of `role`.
    func shape(_ role: FactorRole) throws -> (rows: Int, cols: Int) {
        let d = try dimensions(role)
        guard d.count == 2 else { throw mismatch("\(role.rawValue) has shape \(d), expected a matrix") }
        return (d[0], d[1])
    }

    /// `role` as a matrix whose columns may hold a flattened kernel window: [rows, cols] or
    /// [rows, c, kh, kw] read as [rows, c·kh·kw] (the kernel returned).
    func flattened(_ role: FactorRole) throws -> (rows: Int, cols: Int, kernel: [Int]?) {
        let d = try dimensions(role)
        switch d.count {
        case 2: return (d[0], d[1], nil)
        case 4: return (d[0], d[1] * d[2] * d[3], [d[2], d[3]])
        default: throw mismatch("\(role.rawValue) has shape \(d), neither a matrix nor a convolution weight")
        }
    }

    func load(_ role: FactorRole) throws -> [Float] {
        let tensor = try file.info(module.tensors[role]!)
        defer { file.release(tensor) }
        return try file.floats(tensor)
    }

    /// The stored `.alpha` (kohya names), or PEFT's `alpha` for this module from adapter_config.json.
    func alpha() throws -> Double? {
        if format == .peft { return try PeftFamilyConfig.beside(path).alpha(forModule: module.fileName) }
        guard let name = module.tensors[.alpha], let info = file.header.tensor(named: name) else { return nil }
        return try file.scalar(info)
    }

    /// The factor a family multiplies ΔW by. LyCORIS: alpha / `dim` (the module's inner rank), 1 without
    /// an alpha or without an inner rank (a LoKr with both sides whole). PEFT: alpha / r from the config,
    /// always (its LoKr keeps the scale when both sides are whole).
    func scale(dim: Int?) throws -> Float {
        if format == .peft {
            let config = try PeftFamilyConfig.beside(path)
            return Float(config.alpha(forModule: module.fileName) / Double(config.rank(forModule: module.fileName)))
        }
        guard let dim, let alpha = try alpha() else { return 1 }
        return Float(alpha / Double(dim))
    }

    func mismatch(_ what: String) -> AdapterError {
        AdapterError("\(path): module \(module.fileName): \(what)")
    }

    var dtype: DType {
        let first = module.tensors.filter { $0.key != .alpha }.values.sorted().first!
        return file.header.tensor(named: first)!.dtype
    }
}

/// An exact low-rank form of a family module: ΔW = up · down with the family's scale folded into `up`.
/// A convolution's kernel window is flattened into `down`'s columns (in = Cin·kh·kw, channel-major).
struct ExactLowRank {
    var up: [Float]     // [out, rank]
    var down: [Float]   // [rank, in]
    var rank: Int
    var outFeatures: Int
    var inFeatures: Int

    /// As the one LoRA form every command handles (alpha = rank: the scale is already in `up`).
    var factors: Factors {
        .lowRank(LowRank(down: down, up: up, rank: rank, inFeatures: inFeatures, outFeatures: outFeatures, alpha: Float(rank)))
    }
}

/// The shape facts of a family module, from its header alone.
struct FamilyShape {
    var family: String
    var rank: Int
    var outFeatures: Int
    /// Input width, the kernel window flattened in (Cin·kh·kw) for a convolution.
    var inFeatures: Int
    /// The kernel when the tensors show it (Tucker cores, a whole 4-D LoKr w2); nil when the factors
    /// flatten it away or the layer is linear (the base's layer table decides: `ConvolutionKernels`).
    var kernel: [Int]? = nil
}

enum Families {
    /// The family a module's tensors belong to, if any (a LoCon with a Tucker core is read here too).
    static func kind(of module: ModuleKeys) -> String? {
        if module.tensors[.hadaW1a] != nil { return "loha" }
        if [.lokrW1, .lokrW1a, .lokrW2, .lokrW2a].contains(where: { module.tensors[$0] != nil }) { return "lokr" }
        if module.tensors[.mid] != nil { return "locon" }
        return nil
    }

    static func shape(_ t: FamilyTensors) throws -> FamilyShape? {
        switch kind(of: t.module) {
        case "loha": return try LoHa.shape(t)
        case "lokr": return try LoKr.shape(t)
        case "locon": return try TuckerLoCon.shape(t)
        default: return nil
        }
    }

    static func factors(_ t: FamilyTensors) throws -> Factors? {
        switch kind(of: t.module) {
        case "loha": return try LoHa.exact(t).factors
        case "lokr": return try LoKr.exact(t).factors
        case "locon": return try TuckerLoCon.exact(t).factors
        default: return nil
        }
    }
}
