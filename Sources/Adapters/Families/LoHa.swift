/// LoHa: ΔW = scale · (w1a · w1b) ⊙ (w2a · w2b), scale = alpha / dim (dim = w1a's columns).
///
/// The Hadamard product of two sums of outer products is the sum of the pairwise products
/// (a ⊙ c)(b ⊙ d)ᵀ, so ΔW = up · down exactly with r1·r2 components, never forming out × in.
enum LoHa {
    static func shape(_ t: FamilyTensors) throws -> FamilyShape {
        let w1a = try t.shape(.hadaW1a), w1b = try t.shape(.hadaW1b)
        let w2a = try t.shape(.hadaW2a), w2b = try t.shape(.hadaW2b)
        guard w1a.cols == w1b.rows, w2a.cols == w2b.rows else {
            throw t.mismatch("hada factors of shapes \(w1a)·\(w1b) and \(w2a)·\(w2b) cannot be multiplied")
        }
        guard w1a.rows == w2a.rows, w1b.cols == w2b.cols else {
            throw t.mismatch("the two hada products have different shapes")
        }
        return FamilyShape(family: "loha", rank: w1a.cols * w2a.cols, outFeatures: w1a.rows, inFeatures: w1b.cols)
    }

    static func exact(_ t: FamilyTensors) throws -> ExactLowRank {
        let s = try shape(t)
        let r1 = try t.shape(.hadaW1a).cols, r2 = try t.shape(.hadaW2a).cols
        let w1a = try t.load(.hadaW1a), w1b = try t.load(.hadaW1b), w2a = try t.load(.hadaW2a), w2b = try t.load(.hadaW2b)
        let scale = Float((try t.alpha()).map { $0 / Double(r1) } ?? 1)
        let (out, inn, rank) = (s.outFeatures, s.inFeatures, r1 * r2)
        var up = [Float](repeating: 0, count: out * rank)
        var down = [Float](repeating: 0, count: rank * inn)
        for i in 0..<r1 {
            for j in 0..<r2 {
                let k = i * r2 + j
                for o in 0..<out { up[o * rank + k] = scale * w1a[o * r1 + i] * w2a[o * r2 + j] }
                for c in 0..<inn { down[k * inn + c] = w1b[i * inn + c] * w2b[j * inn + c] }
            }
        }
        return ExactLowRank(up: up, down: down, rank: rank, outFeatures: out, inFeatures: inn)
    }
}
