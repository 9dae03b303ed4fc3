/// LoHa: ΔW = scale · (w1a · w1b) ⊙ (w2a · w2b), scale = alpha / dim (dim = rows of w1b).
///
/// The Hadamard product of two sums of outer products is the sum of the pairwise products
/// (a ⊙ c)(b ⊙ d)ᵀ, so ΔW = up · down exactly with r1·r2 components, never forming out × in. On a
/// convolution each side is either flat (w_b [r, Cin·kh·kw]) or a Tucker form (core `hada_t1`/`hada_t2`,
/// Tucker.swift), which is a product of the same kind once its core is folded in.
enum LoHa {
    static let sides: [(a: FactorRole, b: FactorRole, core: FactorRole)] = [(.hadaW1a, .hadaW1b, .hadaT1), (.hadaW2a, .hadaW2b, .hadaT2)]

    static func sideShape(_ t: FamilyTensors, a: FactorRole, b: FactorRole, core: FactorRole) throws -> (rows: Int, cols: Int, k: Int, kernel: [Int]?) {
        if t.has(core) {
            let s = try Tucker.sideShape(t, core: core, a: a, b: b)
            return (s.rows, s.cols, s.k, s.kernel)
        }
        let wa = try t.shape(a), wb = try t.flattened(b)
        guard wa.cols == wb.rows else { throw t.mismatch("\(a.rawValue) \(wa) and \(b.rawValue) [\(wb.rows), \(wb.cols)] cannot be multiplied") }
        return (wa.rows, wb.cols, wa.cols, wb.kernel)
    }

    static func shape(_ t: FamilyTensors) throws -> FamilyShape {
        let s1 = try sideShape(t, a: sides[0].a, b: sides[0].b, core: sides[0].core)
        let s2 = try sideShape(t, a: sides[1].a, b: sides[1].b, core: sides[1].core)
        guard s1.rows == s2.rows, s1.cols == s2.cols else {
            throw t.mismatch("the two hada products have different shapes, [\(s1.rows), \(s1.cols)] and [\(s2.rows), \(s2.cols)]")
        }
        if let k1 = s1.kernel, let k2 = s2.kernel, k1 != k2 { throw t.mismatch("the two hada products have kernels \(k1) and \(k2)") }
        return FamilyShape(family: "loha", rank: s1.k * s2.k, outFeatures: s1.rows, inFeatures: s1.cols, kernel: s1.kernel ?? s2.kernel)
    }

    static func side(_ t: FamilyTensors, a: FactorRole, b: FactorRole, core: FactorRole) throws -> FactorProduct {
        if t.has(core) { return try Tucker.side(t, core: core, a: a, b: b) }
        let s = try sideShape(t, a: a, b: b, core: core)
        return FactorProduct(u: try t.load(a), v: try t.load(b), rows: s.rows, cols: s.cols, k: s.k)
    }

    static func exact(_ t: FamilyTensors) throws -> ExactLowRank {
        let s = try shape(t)
        let w1 = try side(t, a: sides[0].a, b: sides[0].b, core: sides[0].core)
        let w2 = try side(t, a: sides[1].a, b: sides[1].b, core: sides[1].core)
        // dim: LyCORIS' lora_dim, the rows of w1b in both the flat and the Tucker form.
        let scale = try t.scale(dim: t.dimensions(.hadaW1b)[0])
        let (r1, r2) = (w1.k, w2.k)
        let (out, inn, rank) = (s.outFeatures, s.inFeatures, r1 * r2)
        // Written through buffer pointers, each row of `up` and each row of `down` contiguously, so the
        // loops vectorise (indexed arrays kept them scalar, checked, and the conversion's costliest part).
        let up = [Float](unsafeUninitializedCapacity: out * rank) { dst, initialized in
            guard out * rank > 0 else { initialized = 0; return }
            w1.u.withUnsafeBufferPointer { a in
                w2.u.withUnsafeBufferPointer { b in
                    for o in 0..<out {
                        let row = dst.baseAddress! + o * rank, ao = a.baseAddress! + o * r1, bo = b.baseAddress! + o * r2
                        for i in 0..<r1 {
                            let scaled = scale * ao[i]
                            for j in 0..<r2 { row[i * r2 + j] = scaled * bo[j] }
                        }
                    }
                }
            }
            initialized = out * rank
        }
        let down = [Float](unsafeUninitializedCapacity: rank * inn) { dst, initialized in
            guard rank * inn > 0 else { initialized = 0; return }
            w1.v.withUnsafeBufferPointer { a in
                w2.v.withUnsafeBufferPointer { b in
                    for i in 0..<r1 {
                        for j in 0..<r2 {
                            let row = dst.baseAddress! + (i * r2 + j) * inn
                            let ai = a.baseAddress! + i * inn, bj = b.baseAddress! + j * inn
                            for c in 0..<inn { row[c] = ai[c] * bj[c] }
                        }
                    }
                }
            }
            initialized = rank * inn
        }
        return ExactLowRank(up: up, down: down, rank: rank, outFeatures: out, inFeatures: inn)
    }
}
