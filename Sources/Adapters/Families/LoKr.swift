/// LoKr: ΔW = scale · w1 ⊗ w2, each side stored full (`lokr_w1`) or as a product (`lokr_w1_a · lokr_w1_b`).
///
/// With w1 = U1·V1 and w2 = U2·V2, w1 ⊗ w2 = (U1 ⊗ U2)·(V1 ⊗ V2), an exact low-rank form of rank k1·k2. A
/// full side m × n is written as I·w or w·I, whichever has the smaller inner size min(m, n).
/// scale = alpha / dim where dim is the inner size of the first stored product; 1 when both sides are full
/// (the trainer then ignores alpha, and so do loaders).
enum LoKr {
    /// One Kronecker side as U [rows, k] · V [k, cols].
    struct Side {
        var u: [Float]
        var v: [Float]
        var rows: Int
        var cols: Int
        var k: Int
    }

    static func sideShape(_ t: FamilyTensors, full: FactorRole, a: FactorRole, b: FactorRole) throws -> (rows: Int, cols: Int, k: Int, dim: Int?) {
        if t.has(full) {
            let w = try t.shape(full)
            return (w.rows, w.cols, min(w.rows, w.cols), nil)
        }
        guard t.has(a), t.has(b) else { throw t.mismatch("has neither \(full.rawValue) nor both \(a.rawValue) and \(b.rawValue)") }
        let wa = try t.shape(a), wb = try t.shape(b)
        guard wa.cols == wb.rows else { throw t.mismatch("\(a.rawValue) \(wa) and \(b.rawValue) \(wb) cannot be multiplied") }
        return (wa.rows, wb.cols, wa.cols, wa.cols)
    }

    static func shape(_ t: FamilyTensors) throws -> FamilyShape {
        let s1 = try sideShape(t, full: .lokrW1, a: .lokrW1a, b: .lokrW1b)
        let s2 = try sideShape(t, full: .lokrW2, a: .lokrW2a, b: .lokrW2b)
        return FamilyShape(family: "lokr", rank: s1.k * s2.k, outFeatures: s1.rows * s2.rows, inFeatures: s1.cols * s2.cols)
    }

    static func side(_ t: FamilyTensors, full: FactorRole, a: FactorRole, b: FactorRole) throws -> Side {
        let s = try sideShape(t, full: full, a: a, b: b)
        guard t.has(full) else { return Side(u: try t.load(a), v: try t.load(b), rows: s.rows, cols: s.cols, k: s.k) }
        let w = try t.load(full)
        if s.rows <= s.cols { return Side(u: identity(s.rows), v: w, rows: s.rows, cols: s.cols, k: s.rows) }
        return Side(u: w, v: identity(s.cols), rows: s.rows, cols: s.cols, k: s.cols)
    }

    static func exact(_ t: FamilyTensors) throws -> ExactLowRank {
        let w1 = try side(t, full: .lokrW1, a: .lokrW1a, b: .lokrW1b)
        let w2 = try side(t, full: .lokrW2, a: .lokrW2a, b: .lokrW2b)
        let dim = try sideShape(t, full: .lokrW1, a: .lokrW1a, b: .lokrW1b).dim ?? sideShape(t, full: .lokrW2, a: .lokrW2a, b: .lokrW2b).dim
        let alpha = try t.alpha()
        let scale = Float(dim.flatMap { d in alpha.map { $0 / Double(d) } } ?? 1)
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
