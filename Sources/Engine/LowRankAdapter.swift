/// The factors of one adapted Linear (docs/method.md, "Parametrisations"). R is the stored rank.
public enum AdapterFactors<T: Scalar> {
    /// ΔW = scale · up · diag(m) · down; down [R, in], up [out, R].
    case lowRank(down: Tensor<T>, up: Tensor<T>, scale: T)
    /// ΔW = p · diag(λ ⊙ m) · q − p0 · diag(λ0 ⊙ m) · q0;
    /// q, q0 [R, in], p, p0 [out, R], lambda, lambda0 [R]; the `0` factors are frozen.
    case ortho(q: Tensor<T>, p: Tensor<T>, lambda: Tensor<T>, q0: Tensor<T>, p0: Tensor<T>, lambda0: Tensor<T>)

    /// Low-rank products the forward pass runs: two for ortho (trainable and frozen), one otherwise.
    var copies: Int {
        if case .ortho = self { return 2 }
        return 1
    }

    public var rank: Int {
        switch self {
        case .lowRank(let down, _, _): return down.shape[0]
        case .ortho(let q, _, _, _, _, _): return q.shape[0]
        }
    }

    /// The Linear's input and output widths the factors fit (down/q [R, in], up/p [out, R]).
    public var inFeatures: Int {
        switch self {
        case .lowRank(let down, _, _): return down.shape[1]
        case .ortho(let q, _, _, _, _, _): return q.shape[1]
        }
    }

    public var outFeatures: Int {
        switch self {
        case .lowRank(_, let up, _): return up.shape[0]
        case .ortho(_, let p, _, _, _, _): return p.shape[0]
        }
    }
}

/// Gradient buffers for the trainable factors, shaped like them; nil = not needed.
public enum AdapterGradients<T: Scalar> {
    case lowRank(down: Tensor<T>?, up: Tensor<T>?)
    case ortho(q: Tensor<T>?, p: Tensor<T>?, lambda: Tensor<T>?)
}

/// The per-call adapter hook on a Linear: y [N, out] (the base output) += ΔW(m) · x,
/// x [N, in] (extra leading dimensions are flattened into N, as in `Linear`).
///
/// The mask m is a prefix: its first `active` entries are 1 (c·r(t), docs/method.md, "Rank schedule"),
/// so masked components are simply left out of two thin GEMMs — ΔW is never formed.
/// Low-rank: h = x · down[:a]ᵀ [N, a]; y += scale · h · up[:, :a]ᵀ.
/// Ortho: y += ((x · q[:a]ᵀ) ⊙ λ[:a]) · p[:, :a]ᵀ − ((x · q0[:a]ᵀ) ⊙ λ0[:a]) · p0[:, :a]ᵀ.
/// Backward (accumulating) with g = dy · up[:, :a] (resp. dy · p[:, :a]):
/// low-rank: dUp[:, :a] += scale · dyᵀ · h, dDown[:a] += scale · gᵀ · x, dx += scale · g · down[:a];
/// ortho: u = x · q[:a]ᵀ, dP[:, :a] += dyᵀ · (u ⊙ λ), dλ += Σ_n g ⊙ u, dQ[:a] += (g ⊙ λ)ᵀ · x,
/// dx += (g ⊙ λ) · q[:a] − (g0 ⊙ λ0) · q0[:a] with g0 = dy · p0[:, :a].
/// Masked components (index ≥ active) receive zero gradient: their entries are untouched.
public enum LowRankAdapter {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(x: Tensor<T>, factors: AdapterFactors<T>, active: Int, y: Tensor<T>) {
        let (n, inF, outF, r) = dims(x, factors, active)
        expectShape(y, x.shape.dropLast() + [outF], "adapter y")
        let profiled = ProfiledOperation("adapter.forward", flops: factors.copies * 2 * n * active * (inF + outF))
        defer { profiled.end() }
        if active == 0 { return }
        let h = Tensor<T>(zeros: [n, active])
        switch factors {
        case .lowRank(let down, let up, let scale):
            project(x, down, active: active, into: h)
            T.gemm(transA: false, transB: true, m: n, n: outF, k: active, alpha: scale,
                   a: h.data, lda: active, b: up.data, ldb: r, beta: 1, c: y.data, ldc: outF)
        case .ortho(let q, let p, let lambda, let q0, let p0, let lambda0):
            for (qq, pp, ll, sign) in [(q, p, lambda, T(1)), (q0, p0, lambda0, T(-1))] {
                project(x, qq, active: active, into: h)
                scaleColumns(h, by: ll)
                T.gemm(transA: false, transB: true, m: n, n: outF, k: active, alpha: sign,
                       a: h.data, lda: active, b: pp.data, ldb: r, beta: 1, c: y.data, ldc: outF)
            }
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(
        dy: Tensor<T>, x: Tensor<T>, factors: AdapterFactors<T>, active: Int,
        dx: Tensor<T>?, gradients: AdapterGradients<T>
    ) {
        let (n, inF, outF, r) = dims(x, factors, active)
        expectShape(dy, x.shape.dropLast() + [outF], "adapter dy")
        if let dx { expectShape(dx, x.shape, "adapter dx") }
        // Counted with every gradient requested, as in training.
        let profiled = ProfiledOperation("adapter.backward", flops: factors.copies * n * active * (factors.copies == 2 ? 3 * outF + 4 * inF : 4 * outF + 6 * inF))
        defer { profiled.end() }
        if active == 0 { return }
        let a = active
        let u = Tensor<T>(zeros: [n, a]), g = Tensor<T>(zeros: [n, a])
        switch (factors, gradients) {
        case (.lowRank(let down, let up, let scale), .lowRank(let dDown, let dUp)):
            if let dDown { expectShape(dDown, down.shape, "adapter dDown") }
            if let dUp { expectShape(dUp, up.shape, "adapter dUp") }
            // g = scale · dy · up[:, :a]
            T.gemm(transA: false, transB: false, m: n, n: a, k: outF, alpha: scale,
                   a: dy.data, lda: outF, b: up.data, ldb: r, beta: 0, c: g.data, ldc: a)
            if let dUp {
                project(x, down, active: a, into: u)
                T.gemm(transA: true, transB: false, m: outF, n: a, k: n, alpha: scale,
                       a: dy.data, lda: outF, b: u.data, ldb: a, beta: 1, c: dUp.data, ldc: r)
            }
            if let dDown {
                T.gemm(transA: true, transB: false, m: a, n: inF, k: n, alpha: 1,
                       a: g.data, lda: a, b: x.data, ldb: inF, beta: 1, c: dDown.data, ldc: inF)
            }
            if let dx {
                T.gemm(transA: false, transB: false, m: n, n: inF, k: a, alpha: 1,
                       a: g.data, lda: a, b: down.data, ldb: inF, beta: 1, c: dx.data, ldc: inF)
            }
        case (.ortho(let q, let p, let lambda, let q0, let p0, let lambda0), .ortho(let dQ, let dP, let dLambda)):
            if let dQ { expectShape(dQ, q.shape, "adapter dQ") }
            if let dP { expectShape(dP, p.shape, "adapter dP") }
            if let dLambda { expectShape(dLambda, lambda.shape, "adapter dLambda") }
            // g = dy · p[:, :a]
            T.gemm(transA: false, transB: false, m: n, n: a, k: outF, alpha: 1,
                   a: dy.data, lda: outF, b: p.data, ldb: r, beta: 0, c: g.data, ldc: a)
            if dP != nil || dLambda != nil { project(x, q, active: a, into: u) }
            if let dLambda {
                for j in 0..<a {
                    var s: T = 0
                    for i in 0..<n { s += g.data[i * a + j] * u.data[i * a + j] }
                    dLambda.data[j] += s
                }
            }
            if let dP {
                scaleColumns(u, by: lambda)
                T.gemm(transA: true, transB: false, m: outF, n: a, k: n, alpha: 1,
                       a: dy.data, lda: outF, b: u.data, ldb: a, beta: 1, c: dP.data, ldc: r)
            }
            scaleColumns(g, by: lambda)
            if let dQ {
                T.gemm(transA: true, transB: false, m: a, n: inF, k: n, alpha: 1,
                       a: g.data, lda: a, b: x.data, ldb: inF, beta: 1, c: dQ.data, ldc: inF)
            }
            if let dx {
                T.gemm(transA: false, transB: false, m: n, n: inF, k: a, alpha: 1,
                       a: g.data, lda: a, b: q.data, ldb: inF, beta: 1, c: dx.data, ldc: inF)
                // The frozen term still carries gradient to x.
                T.gemm(transA: false, transB: false, m: n, n: a, k: outF, alpha: 1,
                       a: dy.data, lda: outF, b: p0.data, ldb: r, beta: 0, c: g.data, ldc: a)
                scaleColumns(g, by: lambda0)
                T.gemm(transA: false, transB: false, m: n, n: inF, k: a, alpha: -1,
                       a: g.data, lda: a, b: q0.data, ldb: inF, beta: 1, c: dx.data, ldc: inF)
            }
        default:
            preconditionFailure("adapter: gradients do not match the factors' kind")
        }
    }

    /// h [N, a] = x [N, in] · m[:a]ᵀ for m [R, in].
    private static func project<T: Scalar>(_ x: Tensor<T>, _ m: Tensor<T>, active: Int, into h: Tensor<T>) {
        let inF = m.shape[1], n = x.count / inF
        T.gemm(transA: false, transB: true, m: n, n: active, k: inF, alpha: 1,
               a: x.data, lda: inF, b: m.data, ldb: inF, beta: 0, c: h.data, ldc: active)
    }

    /// h[:, j] *= s[j] for h [N, a].
    private static func scaleColumns<T: Scalar>(_ h: Tensor<T>, by s: Tensor<T>) {
        let a = h.shape[1]
        for i in 0..<h.shape[0] {
            for j in 0..<a { h.data[i * a + j] *= s.data[j] }
        }
    }

    static func dims<T>(_ x: Tensor<T>, _ f: AdapterFactors<T>, _ active: Int) -> (Int, Int, Int, Int) {
        precondition(x.rank >= 2, "adapter wants x [N, in], got \(x.shape)")
        let inF = x.shape[x.rank - 1], n = x.count / max(inF, 1), r = f.rank
        precondition(active >= 0 && active <= r, "adapter: \(active) active components of \(r)")
        switch f {
        case .lowRank(let down, let up, _):
            expectShape(down, [r, inF], "adapter down")
            precondition(up.rank == 2 && up.shape[1] == r, "adapter up \(up.shape) for rank \(r)")
            return (n, inF, up.shape[0], r)
        case .ortho(let q, let p, let lambda, let q0, let p0, let lambda0):
            let outF = p.shape[0]
            expectShape(q, [r, inF], "adapter q")
            expectShape(q0, [r, inF], "adapter q0")
            expectShape(p, [outF, r], "adapter p")
            expectShape(p0, [outF, r], "adapter p0")
            expectShape(lambda, [r], "adapter lambda")
            expectShape(lambda0, [r], "adapter lambda0")
            return (n, inF, outF, r)
        }
    }
}
