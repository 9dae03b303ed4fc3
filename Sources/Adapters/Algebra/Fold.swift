/// ΔW written as one product U · D of thin factors, the form every algebra step works on.
public enum Fold {
    /// (U [out, k], D [k, in], k) with ΔW = U · D for the first `keep` components; scale folded into U.
    /// An ortho module's components are interleaved (q_i, q0_i), as the exact fold to a LoRA writes them.
    public static func product(_ factors: Factors, keep: Int) -> ([Double], [Double], Int) {
        switch factors {
        case let .lowRank(f):
            let k = min(keep, f.rank), scale = Double(f.scale)
            var up = [Double](repeating: 0, count: f.outFeatures * k)
            for o in 0..<f.outFeatures { for c in 0..<k { up[o * k + c] = Double(f.up[o * f.rank + c]) * scale } }
            return (up, f.down.prefix(k * f.inFeatures).map(Double.init), k)
        case let .ortho(f):
            let k = min(keep, f.rank), r2 = 2 * k
            var up = [Double](repeating: 0, count: f.outFeatures * r2)
            var down = [Double](repeating: 0, count: r2 * f.inFeatures)
            for c in 0..<k {
                for o in 0..<f.outFeatures {
                    up[o * r2 + 2 * c] = Double(f.p[o * f.rank + c]) * Double(f.lambda[c])
                    up[o * r2 + 2 * c + 1] = -Double(f.p0[o * f.rank + c]) * Double(f.lambda0[c])
                }
                for i in 0..<f.inFeatures {
                    down[(2 * c) * f.inFeatures + i] = Double(f.q[c * f.inFeatures + i])
                    down[(2 * c + 1) * f.inFeatures + i] = Double(f.q0[c * f.inFeatures + i])
                }
            }
            return (up, down, r2)
        }
    }

    /// The exact rank-2k LoRA of an ortho module's first k components: mask index i owns components
    /// 2i and 2i+1, down = [q_0; q0_0; q_1; q0_1; …], up = [p_0·λ_0, −p0_0·λ0_0, …], scale 1.
    public static func interleaved(_ f: Ortho, keep k: Int) -> LowRank {
        let r2 = 2 * k
        var down = [Float](repeating: 0, count: r2 * f.inFeatures)
        var up = [Float](repeating: 0, count: f.outFeatures * r2)
        for c in 0..<k {
            for i in 0..<f.inFeatures {
                down[(2 * c) * f.inFeatures + i] = f.q[c * f.inFeatures + i]
                down[(2 * c + 1) * f.inFeatures + i] = f.q0[c * f.inFeatures + i]
            }
        }
        // Row by row, so both matrices are walked in memory order.
        for o in 0..<f.outFeatures {
            for c in 0..<k {
                up[o * r2 + 2 * c] = f.p[o * f.rank + c] * f.lambda[c]
                up[o * r2 + 2 * c + 1] = -(f.p0[o * f.rank + c] * f.lambda0[c])
            }
        }
        return LowRank(down: down, up: up, rank: r2, inFeatures: f.inFeatures, outFeatures: f.outFeatures, alpha: Float(r2))
    }

    /// The first `keep` components of a low-rank module, with alpha adjusted so the scale is unchanged.
    public static func truncated(_ f: LowRank, keep: Int) -> LowRank {
        let k = min(keep, f.rank)
        var up = [Float](repeating: 0, count: f.outFeatures * k)
        for o in 0..<f.outFeatures { for c in 0..<k { up[o * k + c] = f.up[o * f.rank + c] } }
        return LowRank(down: Array(f.down.prefix(k * f.inFeatures)), up: up, rank: k, inFeatures: f.inFeatures,
                       outFeatures: f.outFeatures, alpha: f.scale * Float(k))
    }
}
