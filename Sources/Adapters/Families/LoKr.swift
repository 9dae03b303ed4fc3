/// LoKr: ΔW = scale · w1 ⊗ w2, each side stored whole (`lokr_w1`) or as a product (`lokr_w1_a · lokr_w1_b`);
/// on a convolution w2 carries the kernel window: whole [b, d, kh, kw], a product whose `lokr_w2_b`
/// flattens it ([r, d·kh·kw]), or a Tucker form (core `lokr_t2`, Tucker.swift). Read as a matrix
/// [b, d·kh·kw], w1 ⊗ w2 is then exactly the layer's flattened ΔW [a·b, c·d·kh·kw].
///
/// With w1 = U1·V1 and w2 = U2·V2, w1 ⊗ w2 = (U1 ⊗ U2)·(V1 ⊗ V2), an exact low-rank form of rank k1·k2. A
/// whole side m × n is written as I·w or w·I, whichever has the smaller inner size min(m, n).
/// LyCORIS: scale = alpha / dim, dim the inner size of the first stored product (the rows of its b
/// factor); 1 when both sides are whole (the trainer then ignores alpha, and so do loaders).
/// PEFT: alpha / r always (`FamilyTensors.scale`).
enum LoKr {
    struct SideShape {
        var rows: Int
        var cols: Int
        var k: Int
        var dim: Int?
        var kernel: [Int]?
    }

    /// `core`: the side that may carry a kernel window (w2), with its Tucker core's role.
    static func sideShape(_ t: FamilyTensors, full: FactorRole, a: FactorRole, b: FactorRole, core: FactorRole? = nil) throws -> SideShape {
        func matrix(_ role: FactorRole) throws -> (rows: Int, cols: Int, kernel: [Int]?) {
            if core != nil { return try t.flattened(role) }
            let s = try t.shape(role)
            return (s.rows, s.cols, nil)
        }
        if t.has(full) {
            let w = try matrix(full)
            return SideShape(rows: w.rows, cols: w.cols, k: min(w.rows, w.cols), dim: nil, kernel: w.kernel)
        }
        if let core, t.has(core) {
            let s = try Tucker.sideShape(t, core: core, a: a, b: b)
            return SideShape(rows: s.rows, cols: s.cols, k: s.k, dim: s.inner, kernel: s.kernel)
        }
        guard t.has(a), t.has(b) else { throw t.mismatch("has neither \(full.rawValue) nor both \(a.rawValue) and \(b.rawValue)") }
        let wa = try t.shape(a), wb = try matrix(b)
        guard wa.cols == wb.rows else { throw t.mismatch("\(a.rawValue) \(wa) and \(b.rawValue) [\(wb.rows), \(wb.cols)] cannot be multiplied") }
        return SideShape(rows: wa.rows, cols: wb.cols, k: wa.cols, dim: wb.rows, kernel: wb.kernel)
    }

    static func sideShapes(_ t: FamilyTensors) throws -> (SideShape, SideShape) {
        guard !t.has(.lokrT2) || !t.has(.lokrW2) else { throw t.mismatch("has both lokr_w2 and a Tucker core lokr_t2") }
        return (try sideShape(t, full: .lokrW1, a: .lokrW1a, b: .lokrW1b),
                try sideShape(t, full: .lokrW2, a: .lokrW2a, b: .lokrW2b, core: .lokrT2))
    }

    static func shape(_ t: FamilyTensors) throws -> FamilyShape {
        let (s1, s2) = try sideShapes(t)
        return FamilyShape(family: "lokr", rank: s1.k * s2.k, outFeatures: s1.rows * s2.rows, inFeatures: s1.cols * s2.cols, kernel: s2.kernel)
    }

    static func side(_ t: FamilyTensors, _ s: SideShape, full: FactorRole, a: FactorRole, b: FactorRole, core: FactorRole? = nil) throws -> FactorProduct {
        if let core, t.has(core) { return try Tucker.side(t, core: core, a: a, b: b) }
        guard t.has(full) else { return FactorProduct(u: try t.load(a), v: try t.load(b), rows: s.rows, cols: s.cols, k: s.k) }
        let w = try t.load(full)
        if s.rows <= s.cols { return FactorProduct(u: identity(s.rows), v: w, rows: s.rows, cols: s.cols, k: s.rows) }
        return FactorProduct(u: w, v: identity(s.cols), rows: s.rows, cols: s.cols, k: s.cols)
    }

    static func exact(_ t: FamilyTensors) throws -> ExactLowRank {
        let (s1, s2) = try sideShapes(t)
        let w1 = try side(t, s1, full: .lokrW1, a: .lokrW1a, b: .lokrW1b)
        let w2 = try side(t, s2, full: .lokrW2, a: .lokrW2a, b: .lokrW2b, core: .lokrT2)
        let scale = try t.scale(dim: s1.dim ?? s2.dim)
        var up = kron(w1.u, rows: w1.rows, cols: w1.k, w2.u, rows: w2.rows, cols: w2.k)
        if scale != 1 { up = up.map { $0 * scale } }
        let down = kron(w1.v, rows: w1.k, cols: w1.cols, w2.v, rows: w2.k, cols: w2.cols)
        return ExactLowRank(up: up, down: down, rank: w1.k * w2.k, outFeatures: w1.rows * w2.rows, inFeatures: w1.cols * w2.cols)
    }

    static func identity(_ n: Int) -> [Float] {
        var m = [Float](repeating: 0, count: n * n)
        for i in 0..<n { m[i * n + i] = 1 }
        return m
    }

    /// a ⊗ b for row-major a [m, n], b [p, q]: entry (i·p + k, j·q + l) = a[i, j] · b[k, l].
    static func kron(_ a: [Float], rows m: Int, cols n: Int, _ b: [Float], rows p: Int, cols q: Int) -> [Float] {
        var out = [Float](repeating: 0, count: m * p * n * q)
        let width = n * q
        for i in 0..<m { for j in 0..<n {
            let x = a[i * n + j]
            guard x != 0 else { continue }
            for k in 0..<p { for l in 0..<q { out[(i * p + k) * width + j * q + l] = x * b[k * q + l] } }
        } }
        return out
    }
}
