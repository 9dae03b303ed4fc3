/// ΔW written as one product U · D of thin factors, the form every algebra step works on.
public enum Fold {
    /// (U [out, k], D [k, in], k) with ΔW = U · D for the first `keep` components; scale folded into U.
    /// An ortho module's components are interleaved (q_i, q0_i), as the exact fold to a LoRA writes them.
    public static func product(_ factors: Factors, keep: Int) -> ([Double], [Double], Int) {
        let k = components(factors, keep: keep)
        var down: [Double] = []
        let up = [Double](unsafeUninitializedCapacity: factors.outFeatures * k) { up, count in
            down = [Double](unsafeUninitializedCapacity: k * factors.inFeatures) { down, n in
                write(factors, keep: keep, up: up.baseAddress!, upStride: k, down: down.baseAddress!)
                n = k * factors.inFeatures
            }
            count = factors.outFeatures * k
        }
        return (up, down, k)
    }

    /// How many product components the first `keep` components of a module make (two per ortho component).
    public static func components(_ factors: Factors, keep: Int) -> Int {
        switch factors {
        case let .lowRank(f): return min(keep, f.rank)
        case let .ortho(f): return 2 * min(keep, f.rank)
        }
    }

    /// Writes the product form of the first `keep` components: U into the first k columns of the row-major
    /// [out, upStride] buffer `up`, D into the k rows [k, in] at `down` (k = `components(factors, keep:)`).
    /// Writing into a wider buffer lets callers lay several adapters' factors side by side without a copy.
    public static func write(_ factors: Factors, keep: Int, up: UnsafeMutablePointer<Double>, upStride: Int, down: UnsafeMutablePointer<Double>) {
        // Raw buffers: these loops convert every factor element of a `diff`, and bounds checks would
        // keep them from vectorising.
        switch factors {
        case let .lowRank(f):
            let k = min(keep, f.rank), scale = Double(f.scale), rank = f.rank
            f.up.withUnsafeBufferPointer { u in
                for o in 0..<f.outFeatures { for c in 0..<k { up[o * upStride + c] = Double(u[o * rank + c]) * scale } }
            }
            f.down.withUnsafeBufferPointer { d in
                for i in 0..<(k * f.inFeatures) { down[i] = Double(d[i]) }
            }
        case let .ortho(f):
            let k = min(keep, f.rank), rank = f.rank, width = f.inFeatures
            f.p.withUnsafeBufferPointer { p in f.p0.withUnsafeBufferPointer { p0 in
                let lambda = f.lambda.map(Double.init), lambda0 = f.lambda0.map { -Double($0) }
                for o in 0..<f.outFeatures {
                    for c in 0..<k {
                        up[o * upStride + 2 * c] = Double(p[o * rank + c]) * lambda[c]
                        up[o * upStride + 2 * c + 1] = Double(p0[o * rank + c]) * lambda0[c]
                    }
                }
            } }
            f.q.withUnsafeBufferPointer { q in f.q0.withUnsafeBufferPointer { q0 in
                for c in 0..<k {
                    for i in 0..<width {
                        down[(2 * c) * width + i] = Double(q[c * width + i])
                        down[(2 * c + 1) * width + i] = Double(q0[c * width + i])
                    }
                }
            } }
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
