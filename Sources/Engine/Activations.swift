/// Element-wise activations. Shapes: x, y, dy, dx all the same (any shape),
/// except GEGLU (below). Backward accumulates: dx += dy · f′(x).
public enum Activation: Sendable {
    /// x · σ(x) (SiLU / swish; SDXL resnets and time embedding).
    case silu
    /// Exact GELU 0.5·x·(1 + erf(x/√2)) (SDXL feed-forward, OpenCLIP bigG).
    case gelu
    /// x · σ(1.702·x) (OpenAI CLIP-L).
    case quickGELU

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func forward<T: Scalar>(x: Tensor<T>, y: Tensor<T>) {
        let profiled = ProfiledOperation("activation.forward")
        defer { profiled.end() }
        precondition(x.count == y.count, "Activation: x \(x.shape) vs y \(y.shape)")
        let xp = x.data, yp = y.data
        if xp == yp {
            // In place (y is x): loops through one pointer. With two, LLVM's run-time overlap check
            // sends the same buffer down its scalar fallback, 4× slower.
            switch self {
            case .silu: Parallel.forEach(x.count, grain: 8192) { r in for i in r { yp[i] = Activation.silu.value(yp[i]) } }
            case .gelu: Parallel.forEach(x.count, grain: 8192) { r in for i in r { yp[i] = Activation.gelu.value(yp[i]) } }
            case .quickGELU: Parallel.forEach(x.count, grain: 8192) { r in for i in r { yp[i] = Activation.quickGELU.value(yp[i]) } }
            }
            return
        }
        // One loop per case: a switch inside the loop body keeps LLVM from vectorising it.
        switch self {
        case .silu: Parallel.forEach(x.count, grain: 8192) { r in for i in r { yp[i] = Activation.silu.value(xp[i]) } }
        case .gelu: Parallel.forEach(x.count, grain: 8192) { r in for i in r { yp[i] = Activation.gelu.value(xp[i]) } }
        case .quickGELU: Parallel.forEach(x.count, grain: 8192) { r in for i in r { yp[i] = Activation.quickGELU.value(xp[i]) } }
        }
    }

    /// Allocating convenience.
    public func forward<T: Scalar>(_ x: Tensor<T>) -> Tensor<T> {
        let y = Tensor<T>(zeros: x.shape)
        forward(x: x, y: y)
        return y
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public func backward<T: Scalar>(dy: Tensor<T>, x: Tensor<T>, dx: Tensor<T>) {
        let profiled = ProfiledOperation("activation.backward")
        defer { profiled.end() }
        precondition(x.count == dy.count && x.count == dx.count, "Activation backward: shapes differ")
        let xp = x.data, dyp = dy.data, dxp = dx.data
        switch self {
        case .silu:
            Parallel.forEach(x.count, grain: 8192) { r in for i in r { dxp[i] += dyp[i] * Activation.silu.derivative(xp[i]) } }
        case .gelu:
            Parallel.forEach(x.count, grain: 8192) { r in for i in r { dxp[i] += dyp[i] * Activation.gelu.derivative(xp[i]) } }
        case .quickGELU:
            Parallel.forEach(x.count, grain: 8192) { r in
                for i in r { dxp[i] += dyp[i] * Activation.quickGELU.derivative(xp[i]) }
            }
        }
    }

    @inline(__always)
    func value<T: Scalar>(_ x: T) -> T {
        switch self {
        case .silu: return x * sigmoid(x)
        case .gelu: return T(0.5) * x * (1 + T.fastErf(x * T(0.7071067811865476)))
        case .quickGELU: return x * sigmoid(T(1.702) * x)
        }
    }

    @inline(__always)
    func derivative<T: Scalar>(_ x: T) -> T {
        switch self {
        case .silu:
            let s = sigmoid(x)
            return s * (1 + x * (1 - s))
        case .gelu:
            // Φ(x) + x·φ(x)
            let cdf = T(0.5) * (1 + T.fastErf(x * T(0.7071067811865476)))
            let pdf = T(0.3989422804014327) * T.fastExp(T(-0.5) * x * x)
            return cdf + x * pdf
        case .quickGELU:
            let s = sigmoid(T(1.702) * x)
            return s * (1 + T(1.702) * x * (1 - s))
        }
    }
}

/// σ(x), branch-free so loops vectorise: for very negative x, e^−x saturates
/// (Float: clamped to ~2e38; Double: inf) and σ → 0 without NaN.
@inline(__always)
func sigmoid<T: Scalar>(_ x: T) -> T {
    1 / (1 + T.fastExp(-x))
}

/// GEGLU as diffusers: proj output p [N, 2F] → hidden, gate = p.chunk(2, dim: -1);
/// y [N, F] = hidden · gelu(gate).
/// Backward (accumulating): dHidden += dy · gelu(gate), dGate += dy · hidden · gelu′(gate),
/// written into the matching halves of dp [N, 2F].
public enum GEGLU {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(p: Tensor<T>, y: Tensor<T>) {
        let profiled = ProfiledOperation("geglu.forward")
        defer { profiled.end() }
        let (n, f) = dims(p)
        expectShape(y, Array(p.shape.dropLast()) + [f], "GEGLU y")
        let pp = p.data, yp = y.data
        Parallel.forEach(n, grain: max(1, 4096 / max(f, 1))) { rows in
            for r in rows {
                let h = pp + r * 2 * f, g = h + f, o = yp + r * f
                for i in 0..<f { o[i] = h[i] * Activation.gelu.value(g[i]) }
            }
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(dy: Tensor<T>, p: Tensor<T>, dp: Tensor<T>) {
        let profiled = ProfiledOperation("geglu.backward")
        defer { profiled.end() }
        let (n, f) = dims(p)
        expectShape(dp, p.shape, "GEGLU dp")
        precondition(dy.count == n * f, "GEGLU dy \(dy.shape)")
        let pp = p.data, dyp = dy.data, dpp = dp.data
        Parallel.forEach(n, grain: max(1, 4096 / max(f, 1))) { rows in
            for r in rows {
                let h = pp + r * 2 * f, g = h + f, d = dyp + r * f
                let dh = dpp + r * 2 * f, dg = dh + f
                for i in 0..<f {
                    // gelu(g) = g·Φ(g) and gelu′(g) = Φ(g) + g·φ(g) share Φ: one erf per element.
                    let x = g[i]
                    let cdf = T(0.5) * (1 + T.fastErf(x * T(0.7071067811865476)))
                    let pdf = T(0.3989422804014327) * T.fastExp(T(-0.5) * x * x)
                    dh[i] += d[i] * (x * cdf)
                    dg[i] += d[i] * h[i] * (cdf + x * pdf)
                }
            }
        }
    }

    private static func dims<T>(_ p: Tensor<T>) -> (Int, Int) {
        let last = p.shape.last ?? 0
        precondition(last % 2 == 0 && last > 0, "GEGLU wants an even last dimension, got \(p.shape)")
        return (p.count / last, last / 2)
    }
}
