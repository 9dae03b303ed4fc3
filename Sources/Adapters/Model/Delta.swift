import CBLAS

/// ΔW of a module, computed in one place for every command (tests, bake, merge-into, diff checks).
public enum Delta {
    /// ΔW [out, in] keeping the first `keep` components (the rank mask), accumulated in Float64.
    public static func compute(_ factors: Factors, keep: Int) -> [Float] {
        switch factors {
        case let .lowRank(f):
            let k = min(keep, f.rank)
            var scaledUp = [Double](repeating: 0, count: f.outFeatures * k)
            for o in 0..<f.outFeatures { for c in 0..<k { scaledUp[o * k + c] = Double(f.up[o * f.rank + c]) * Double(f.scale) } }
            return product(scaledUp, Array(f.down.prefix(k * f.inFeatures)).map(Double.init), out: f.outFeatures, k: k, in: f.inFeatures)
        case let .ortho(f):
            let k = min(keep, f.rank)
            // [p·λ | −p0·λ0] · [q ; q0]
            var left = [Double](repeating: 0, count: f.outFeatures * 2 * k)
            for o in 0..<f.outFeatures {
                for c in 0..<k {
                    left[o * 2 * k + c] = Double(f.p[o * f.rank + c]) * Double(f.lambda[c])
                    left[o * 2 * k + k + c] = -Double(f.p0[o * f.rank + c]) * Double(f.lambda0[c])
                }
            }
            let right = (Array(f.q.prefix(k * f.inFeatures)) + Array(f.q0.prefix(k * f.inFeatures))).map(Double.init)
            return product(left, right, out: f.outFeatures, k: 2 * k, in: f.inFeatures)
        }
    }

    static func product(_ a: [Double], _ b: [Double], out: Int, k: Int, in width: Int) -> [Float] {
        guard k > 0 else { return [Float](repeating: 0, count: out * width) }
        var c = [Double](repeating: 0, count: out * width)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(out), Int32(width), Int32(k), 1, a, Int32(k), b, Int32(width), 0, &c, Int32(width))
        return c.map(Float.init)
    }
}
