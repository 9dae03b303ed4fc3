/// One factor of a family written as a product U [rows, k] · V [k, cols]; a convolution's kernel window
/// is flattened into V's columns (cols = Cin·kh·kw, channel-major, as the layer's weight is laid out).
struct FactorProduct {
    var u: [Float]
    var v: [Float]
    var rows: Int
    var cols: Int
    var k: Int
}

/// Tucker-decomposed convolution weights (LyCORIS `use_tucker`, PEFT `use_effective_conv2d`):
///
///     W[p, c, κ] = Σᵢⱼ core[i, j, κ] · a[i, p] · b[j, c],   core [R1, R2, kh, kw], a [R1, out], b [R2, in]
///
/// Folding the core into b, V[i, c·K + κ] = Σⱼ core[i, j, κ] · b[j, c], gives W = aᵀ · V: a LoCon of
/// rank R1 with the whole kernel in the down factor and a 1×1 up factor, exactly.
enum Tucker {
    /// The core's [R1, R2] and kernel.
    static func coreShape(_ t: FamilyTensors, _ core: FactorRole) throws -> (r1: Int, r2: Int, kernel: [Int]) {
        let d = try t.dimensions(core)
        guard d.count == 4, d[2] > 0, d[3] > 0 else { throw t.mismatch("\(core.rawValue) has shape \(d), not a Tucker core [R, R, kh, kw]") }
        return (d[0], d[1], [d[2], d[3]])
    }

    /// V[i, c·K + κ] = Σⱼ core[i, j, κ] · b[j, c] for core [r1, r2, K] and b [r2, cols]: [r1, cols·K].
    static func fold(core: [Float], r1: Int, r2: Int, area: Int, b: [Float], cols: Int) -> [Float] {
        var v = [Float](repeating: 0, count: r1 * cols * area)
        var row = [Double](repeating: 0, count: cols * area)
        for i in 0..<r1 {
            for x in row.indices { row[x] = 0 }
            for j in 0..<r2 {
                for kappa in 0..<area {
                    let g = Double(core[(i * r2 + j) * area + kappa])
                    guard g != 0 else { continue }
                    for c in 0..<cols { row[c * area + kappa] += g * Double(b[j * cols + c]) }
                }
            }
            for x in row.indices { v[i * cols * area + x] = Float(row[x]) }
        }
        return v
    }

    static func transpose(_ x: [Float], rows: Int, cols: Int) -> [Float] {
        var t = [Float](repeating: 0, count: x.count)
        for r in 0..<rows { for c in 0..<cols { t[c * rows + r] = x[r * cols + c] } }
        return t
    }

    /// The shape of a LoHa/LoKr Tucker side: core t [R1, R2, kh, kw], `a` [R1, out] (output mode),
    /// `b` [R2, in] (input mode). `inner` is R2, the rows of `b`, which loaders divide alpha by.
    static func sideShape(_ t: FamilyTensors, core: FactorRole, a: FactorRole, b: FactorRole) throws -> (rows: Int, cols: Int, k: Int, inner: Int, kernel: [Int]) {
        let c = try coreShape(t, core)
        let wa = try t.shape(a), wb = try t.shape(b)
        guard wa.rows == c.r1, wb.rows == c.r2 else {
            throw t.mismatch("Tucker core \(core.rawValue) [\(c.r1), \(c.r2), …] does not fit \(a.rawValue) \(wa) and \(b.rawValue) \(wb)")
        }
        return (wa.cols, wb.cols * c.kernel[0] * c.kernel[1], c.r1, c.r2, c.kernel)
    }

    static func side(_ t: FamilyTensors, core: FactorRole, a: FactorRole, b: FactorRole) throws -> FactorProduct {
        let s = try sideShape(t, core: core, a: a, b: b)
        let area = s.kernel[0] * s.kernel[1]
        let u = transpose(try t.load(a), rows: s.k, cols: s.rows)
        let v = fold(core: try t.load(core), r1: s.k, r2: s.inner, area: area, b: try t.load(b), cols: s.cols / area)
        return FactorProduct(u: u, v: v, rows: s.rows, cols: s.cols, k: s.k)
    }
}

/// A LoCon with a Tucker core (LyCORIS `use_tucker`): down [R, Cin, 1, 1], `lora_mid` [R', R, kh, kw],
/// up [Cout, R', 1, 1]; ΔW = scale · up · mid · down with scale = alpha / R. The core folds into down,
/// so it is the LoCon up · (mid ∘ down) of rank R', kernel [kh, kw].
enum TuckerLoCon {
    static func parts(_ t: FamilyTensors) throws -> (out: Int, channels: Int, rank: Int, inner: Int, kernel: [Int]) {
        let down = try t.dimensions(.down), up = try t.dimensions(.up)
        let core = try Tucker.coreShape(t, .mid)
        func pointwise(_ d: [Int]) -> Bool { d.count == 2 || (d.count == 4 && d[2] == 1 && d[3] == 1) }
        guard pointwise(down), pointwise(up) else {
            throw t.mismatch("lora_down \(down) and lora_up \(up) around a Tucker core must be 1×1")
        }
        guard down[0] == core.r2, up[1] == core.r1 else {
            throw t.mismatch("lora_mid [\(core.r1), \(core.r2), …] does not fit lora_down \(down) and lora_up \(up)")
        }
        return (up[0], down[1], core.r1, core.r2, core.kernel)
    }

    static func shape(_ t: FamilyTensors) throws -> FamilyShape {
        let p = try parts(t)
        return FamilyShape(family: "locon", rank: p.rank, outFeatures: p.out, inFeatures: p.channels * p.kernel[0] * p.kernel[1], kernel: p.kernel)
    }

    static func exact(_ t: FamilyTensors) throws -> ExactLowRank {
        let p = try parts(t)
        let area = p.kernel[0] * p.kernel[1]
        let scale = try t.scale(dim: p.inner)
        var up = try t.load(.up)
        if scale != 1 { up = up.map { $0 * scale } }
        let down = Tucker.fold(core: try t.load(.mid), r1: p.rank, r2: p.inner, area: area, b: try t.load(.down), cols: p.channels)
        return ExactLowRank(up: up, down: down, rank: p.rank, outFeatures: p.out, inFeatures: p.channels * area)
    }
}
