/// Normalisation layers. Statistics are accumulated in Double (two passes:
/// mean, then centred variance) because a group holds up to ~10⁶ Float values
/// and E[x²] − E[x]² cancels badly; the per-element work stays in T.

/// Per-group (per-row) statistics saved by forward for backward: mean and
/// 1/√(var + eps), kept in Double (they are few) so that x − mean stays exact.
public struct NormStats: Sendable {
    public let mean: Tensor<Double>
    public let rstd: Tensor<Double>

    init(count: Int) {
        mean = Tensor(zeros: [count])
        rstd = Tensor(zeros: [count])
    }
}

/// x − mean without cancellation for |mean| ≫ std: subtract the Float-rounded
/// mean (exact when x is near it), then the small rounding residual.
struct Centre<T: Scalar> {
    let mu: T, residual: T
    @inline(__always) init(_ mean: Double) {
        mu = T(mean)
        residual = T(mean - Double(mu))
    }
    @inline(__always) func callAsFunction(_ x: T) -> T { (x - mu) - residual }
}

/// GroupNorm over x [B, C, S] (S = H·W, or any trailing size), G groups of C/G channels.
/// Forward: y = (x − μ_bg) · rstd_bg · gamma[c] + beta[c]; gamma, beta [C] (optional: affine).
/// Backward (accumulating): with x̂ = (x − μ)·rstd and g = dy·gamma over a group of M elements,
/// dx += rstd · (g − mean(g) − x̂ · mean(g·x̂)); dGamma[c] += Σ dy·x̂; dBeta[c] += Σ dy.
public enum GroupNorm {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(
        x: Tensor<T>, groups: Int, eps: Double, gamma: Tensor<T>?, beta: Tensor<T>?, y: Tensor<T>
    ) -> NormStats {
        let profiled = ProfiledOperation("groupnorm.forward")
        defer { profiled.end() }
        let (nb, c, s) = dims(x, groups)
        expectShape(y, x.shape, "GroupNorm y")
        let cg = c / groups, m = cg * s
        let stats = NormStats(count: nb * groups)
        let xp = x.data, yp = y.data, mp = stats.mean.data, rp = stats.rstd.data
        let gp = gamma?.data, bp = beta?.data
        if let gamma { expectShape(gamma, [c], "GroupNorm gamma") }
        if let beta { expectShape(beta, [c], "GroupNorm beta") }
        Parallel.forEach(nb * groups) { items in
            for item in items {
                let base = item * m
                let (mean, rstd) = moments(xp + base, count: m, eps: eps)
                mp[item] = mean; rp[item] = rstd
                let c0 = (item % groups) * cg
                let centre = Centre<T>(mean)
                for cc in 0..<cg {
                    // Centre first: folding the mean into a shift (x·a + b) cancels
                    // catastrophically when |mean| ≫ std.
                    let scale = T(rstd) * (gp?[c0 + cc] ?? 1)
                    let shift = bp?[c0 + cc] ?? 0
                    let xi = xp + base + cc * s, yi = yp + base + cc * s
                    for i in 0..<s { yi[i] = centre(xi[i]) * scale + shift }
                }
            }
        }
        return stats
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(
        dy: Tensor<T>, x: Tensor<T>, stats: NormStats, groups: Int, gamma: Tensor<T>?,
        dx: Tensor<T>?, dGamma: Tensor<T>?, dBeta: Tensor<T>?
    ) {
        let profiled = ProfiledOperation("groupnorm.backward")
        defer { profiled.end() }
        let (nb, c, s) = dims(x, groups)
        expectShape(dy, x.shape, "GroupNorm dy")
        if let dx { expectShape(dx, x.shape, "GroupNorm dx") }
        if let dGamma { expectShape(dGamma, [c], "GroupNorm dGamma") }
        if let dBeta { expectShape(dBeta, [c], "GroupNorm dBeta") }
        let cg = c / groups, m = cg * s
        let xp = x.data, dyp = dy.data, gp = gamma?.data
        let dxp = dx?.data, dgp = dGamma?.data, dbp = dBeta?.data
        let mp = stats.mean.data, rp = stats.rstd.data
        // Parallel over groups; the batch loop is inside so each channel's
        // dGamma / dBeta has one writer.
        Parallel.forEach(groups) { gs in
            for g in gs {
                for b in 0..<nb {
                    let item = b * groups + g, base = item * m
                    let centre = Centre<T>(mp[item]), rstd = T(rp[item])
                    var sumG = 0.0, sumGX = 0.0
                    for cc in 0..<cg {
                        let ch = g * cg + cc
                        let gam = gp?[ch] ?? 1
                        let (sdy, sdyx) = gradientSums(
                            x: xp + base + cc * s, dy: dyp + base + cc * s, count: s,
                            mean: mp[item], rstd: rp[item])
                        dgp?[ch] += T(sdyx)
                        dbp?[ch] += T(sdy)
                        sumG += sdy * Double(gam)
                        sumGX += sdyx * Double(gam)
                    }
                    guard let dxp else { continue }
                    let meanG = T(sumG / Double(m)), meanGX = T(sumGX / Double(m))
                    for cc in 0..<cg {
                        let gam = gp?[g * cg + cc] ?? 1
                        let xi = xp + base + cc * s, di = dyp + base + cc * s, oi = dxp + base + cc * s
                        for i in 0..<s {
                            let xh = centre(xi[i]) * rstd
                            oi[i] += rstd * (di[i] * gam - meanG - xh * meanGX)
                        }
                    }
                }
            }
        }
    }

    private static func dims<T>(_ x: Tensor<T>, _ groups: Int) -> (Int, Int, Int) {
        precondition(x.rank >= 2, "GroupNorm wants x [B, C, ...]")
        let c = x.shape[1]
        precondition(groups > 0 && c % groups == 0, "GroupNorm: \(c) channels, \(groups) groups")
        return (x.shape[0], c, x.count / max(1, x.shape[0] * c))
    }
}

/// LayerNorm over the last dimension: x [N, D] (leading dimensions flattened), gamma, beta [D].
/// Forward: y = (x − μ_n) · rstd_n · gamma + beta.
/// Backward (accumulating): as GroupNorm with one group per row;
/// dGamma, dBeta are reduced over rows in per-chunk partial sums.
public enum LayerNorm {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(
        x: Tensor<T>, eps: Double, gamma: Tensor<T>?, beta: Tensor<T>?, y: Tensor<T>
    ) -> NormStats {
        let profiled = ProfiledOperation("layernorm.forward")
        defer { profiled.end() }
        let d = x.shape.last ?? 1, n = x.count / max(d, 1)
        expectShape(y, x.shape, "LayerNorm y")
        if let gamma { expectShape(gamma, [d], "LayerNorm gamma") }
        if let beta { expectShape(beta, [d], "LayerNorm beta") }
        let stats = NormStats(count: n)
        let xp = x.data, yp = y.data, mp = stats.mean.data, rp = stats.rstd.data
        // Identity affine when absent: non-optional pointers keep the row loop vectorisable.
        let g = gamma ?? Tensor(shape: [d]) { _ in 1 }, bt = beta ?? Tensor(zeros: [d])
        let gp = g.data, bp = bt.data
        Parallel.forEach(n, grain: max(1, 4096 / max(d, 1))) { rows in
            for r in rows {
                let (mean, rstd) = moments(xp + r * d, count: d, eps: eps)
                mp[r] = mean; rp[r] = rstd
                let xi = xp + r * d, yi = yp + r * d
                let centre = Centre<T>(mean), rs = T(rstd)
                for i in 0..<d {
                    yi[i] = centre(xi[i]) * rs * gp[i] + bp[i]
                }
            }
        }
        return stats
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(
        dy: Tensor<T>, x: Tensor<T>, stats: NormStats, gamma: Tensor<T>?,
        dx: Tensor<T>?, dGamma: Tensor<T>?, dBeta: Tensor<T>?
    ) {
        let profiled = ProfiledOperation("layernorm.backward")
        defer { profiled.end() }
        let d = x.shape.last ?? 1, n = x.count / max(d, 1)
        expectShape(dy, x.shape, "LayerNorm dy")
        if let dx { expectShape(dx, x.shape, "LayerNorm dx") }
        if let dGamma { expectShape(dGamma, [d], "LayerNorm dGamma") }
        if let dBeta { expectShape(dBeta, [d], "LayerNorm dBeta") }
        let g = gamma ?? Tensor(shape: [d]) { _ in 1 }
        let xp = x.data, dyp = dy.data, gp = g.data, dxp = dx?.data
        let mp = stats.mean.data, rp = stats.rstd.data
        let chunks = max(1, min(Parallel.threads, n))
        // Per-chunk partial sums of dGamma / dBeta, reduced afterwards.
        let partial = Tensor<T>(zeros: [chunks, 2, d])
        Parallel.forEach(chunks) { cs in
            for chunk in cs {
                let pg = partial.data + chunk * 2 * d, pb = pg + d
                for r in (n * chunk / chunks)..<(n * (chunk + 1) / chunks) {
                    let xi = xp + r * d, di = dyp + r * d
                    let centre = Centre<T>(mp[r]), rstd = T(rp[r])
                    var sumG = 0.0, sumGX = 0.0
                    for i in 0..<d {
                        let xh = centre(xi[i]) * rstd
                        let gi = di[i] * gp[i]
                        pg[i] += di[i] * xh
                        pb[i] += di[i]
                        sumG += Double(gi)
                        sumGX += Double(gi * xh)
                    }
                    guard let dxp else { continue }
                    let meanG = T(sumG / Double(d)), meanGX = T(sumGX / Double(d))
                    let oi = dxp + r * d
                    for i in 0..<d {
                        let xh = centre(xi[i]) * rstd
                        oi[i] += rstd * (di[i] * gp[i] - meanG - xh * meanGX)
                    }
                }
            }
        }
        for chunk in 0..<chunks {
            let pg = partial.data + chunk * 2 * d
            if let dGamma { for i in 0..<d { dGamma.data[i] += pg[i] } }
            if let dBeta { for i in 0..<d { dBeta.data[i] += pg[d + i] } }
        }
    }
}

/// Mean and 1/√(var + eps) of `count` values, accumulated in Double, two passes,
/// eight lanes wide (a single Double accumulator is latency-bound).
@inline(__always)
func moments<T: Scalar>(_ p: UnsafeMutablePointer<T>, count: Int, eps: Double) -> (Double, Double) {
    var acc = SIMD8<Double>(), i = 0
    while i + 8 <= count { acc += SIMD8<Double>(load8(p + i)); i += 8 }
    var sum = acc.sum()
    while i < count { sum += Double(p[i]); i += 1 }
    let mean = sum / Double(count)
    acc = SIMD8<Double>()
    i = 0
    let m8 = SIMD8<Double>(repeating: mean)
    while i + 8 <= count {
        let d = SIMD8<Double>(load8(p + i)) - m8
        acc += d * d
        i += 8
    }
    var sq = acc.sum()
    while i < count {
        let d = Double(p[i]) - mean
        sq += d * d
        i += 1
    }
    return (mean, 1 / (sq / Double(count) + eps).squareRoot())
}

/// (Σ dy, Σ dy·x̂) with x̂ = (x − mean)·rstd, in Double, eight lanes wide.
@inline(__always)
func gradientSums<T: Scalar>(
    x: UnsafeMutablePointer<T>, dy: UnsafeMutablePointer<T>, count: Int, mean: Double, rstd: Double
) -> (Double, Double) {
    var a = SIMD8<Double>(), b = SIMD8<Double>(), i = 0
    let m8 = SIMD8<Double>(repeating: mean), r8 = SIMD8<Double>(repeating: rstd)
    while i + 8 <= count {
        let d = SIMD8<Double>(load8(dy + i))
        a += d
        b += d * ((SIMD8<Double>(load8(x + i)) - m8) * r8)
        i += 8
    }
    var sa = a.sum(), sb = b.sum()
    while i < count {
        let d = Double(dy[i])
        sa += d
        sb += d * (Double(x[i]) - mean) * rstd
        i += 1
    }
    return (sa, sb)
}
