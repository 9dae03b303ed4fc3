import SafeTensors

/// LyCORIS families whose ΔW is an exact low-rank product once written out (docs/families.md):
/// each reads its tensors from the header (shapes only) and from the data (factors) through this view.
struct FamilyTensors {
    let module: ModuleKeys
    let file: SafeTensorsFile
    let path: String

    func has(_ role: FactorRole) -> Bool { module.tensors[role] != nil }

    /// The 2-D shape of `role`; convolution modules (4-D, or kernels flattened into the factors) are refused
    /// because their kernel size cannot be told from these tensors alone.
    func shape(_ role: FactorRole) throws -> (rows: Int, cols: Int) {
        guard let name = module.tensors[role], let info = file.header.tensor(named: name) else {
            throw AdapterError("\(path): module \(module.fileName) has no \(role.rawValue) tensor")
        }
        guard info.dtype.isConvertibleToFloat else {
            throw AdapterError("\(path): tensor \(name) has dtype \(info.dtype.rawValue), not a float type")
        }
        guard info.shape.count == 2 else {
            throw AdapterError("\(path): module \(module.fileName): \(role.rawValue) has shape \(info.shape); LyCORIS families are read for linear layers only (convolution LoHa/LoKr are not supported yet)")
        }
        if let dimension = info.shape.first(where: { $0 > FactorLimits.maxDimension }) {
            throw AdapterError("\(path): tensor \(name) has shape \(info.shape): dimension \(dimension) exceeds \(FactorLimits.maxDimension) (refused before reading it)")
        }
        return (info.shape[0], info.shape[1])
    }

    func load(_ role: FactorRole) throws -> [Float] {
        let tensor = try file.info(module.tensors[role]!)
        defer { file.release(tensor) }
        return try file.floats(tensor)
    }

    /// The stored `.alpha`, if any.
    func alpha() throws -> Double? {
        guard let name = module.tensors[.alpha], let info = file.header.tensor(named: name) else { return nil }
        return try file.scalar(info)
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
    var inFeatures: Int
}

enum Families {
    /// The family a module's tensors belong to, if any.
    static func kind(of module: ModuleKeys) -> String? {
        if module.tensors[.hadaW1a] != nil { return "loha" }
        if [.lokrW1, .lokrW1a, .lokrW2, .lokrW2a].contains(where: { module.tensors[$0] != nil }) { return "lokr" }
        return nil
    }

    static func shape(_ t: FamilyTensors) throws -> FamilyShape? {
        switch kind(of: t.module) {
        case "loha": return try LoHa.shape(t)
        case "lokr": return try LoKr.shape(t)
        default: return nil
        }
    }

    static func factors(_ t: FamilyTensors) throws -> Factors? {
        switch kind(of: t.module) {
        case "loha": return try LoHa.exact(t).factors
        case "lokr": return try LoKr.exact(t).factors
        default: return nil
        }
    }
}
