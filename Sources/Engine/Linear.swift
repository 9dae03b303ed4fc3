/// Fully connected layer in PyTorch layout.
///
/// Shapes: x [N, in], weight [out, in], bias [out], y [N, out]; x may carry more
/// leading dimensions ([B, L, in] → [B, L, out]), which are flattened into N.
/// Forward: y = x · weightᵀ + bias.
/// Backward (accumulating): dx += dy · weight, dWeight += dyᵀ · x, dBias += Σ_n dy.
/// Pass `nil` for a gradient that is not needed: frozen weights get no buffer.
public enum Linear {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(
        x: Tensor<T>, weight: Tensor<T>, bias: Tensor<T>?, y: Tensor<T>
    ) {
        let (n, inF, outF) = dims(x, weight)
        expectShape(y, x.shape.dropLast() + [outF], "Linear y")
        let profiled = ProfiledOperation("linear.forward", flops: 2 * n * inF * outF)
        defer { profiled.end() }
        if let bias {
            expectShape(bias, [outF], "Linear bias")
            // Pre-fill y with the bias so the GEMM can add into it (beta = 1).
            let b = bias.data, out = y.data
            Parallel.forEach(n, grain: max(1, 16384 / max(outF, 1))) { rows in
                for r in rows { (out + r * outF).update(from: b, count: outF) }
            }
        }
        T.gemm(
            transA: false, transB: true, m: n, n: outF, k: inF,
            alpha: 1, a: x.data, lda: inF, b: weight.data, ldb: inF,
            beta: bias == nil ? 0 : 1, c: y.data, ldc: outF)
    }

    /// Allocating convenience: returns y [N, out].
    public static func forward<T: Scalar>(
        x: Tensor<T>, weight: Tensor<T>, bias: Tensor<T>?
    ) -> Tensor<T> {
        let y = Tensor<T>(zeros: x.shape.dropLast() + [weight.shape[0]])
        forward(x: x, weight: weight, bias: bias, y: y)
        return y
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(
        dy: Tensor<T>, x: Tensor<T>, weight: Tensor<T>,
        dx: Tensor<T>?, dWeight: Tensor<T>?, dBias: Tensor<T>?
    ) {
        let (n, inF, outF) = dims(x, weight)
        expectShape(dy, x.shape.dropLast() + [outF], "Linear dy")
        let profiled = ProfiledOperation("linear.backward", flops: 2 * n * inF * outF * ((dx == nil ? 0 : 1) + (dWeight == nil ? 0 : 1)))
        defer { profiled.end() }
        if let dx {
            expectShape(dx, x.shape, "Linear dx")
            T.gemm(
                transA: false, transB: false, m: n, n: inF, k: outF,
                alpha: 1, a: dy.data, lda: outF, b: weight.data, ldb: inF,
                beta: 1, c: dx.data, ldc: inF)
        }
        if let dWeight {
            expectShape(dWeight, [outF, inF], "Linear dWeight")
            T.gemm(
                transA: true, transB: false, m: outF, n: inF, k: n,
                alpha: 1, a: dy.data, lda: outF, b: x.data, ldb: inF,
                beta: 1, c: dWeight.data, ldc: inF)
        }
        if let dBias {
            expectShape(dBias, [outF], "Linear dBias")
            sumRows(dy.data, rows: n, cols: outF, into: dBias.data)
        }
    }

    private static func dims<T>(_ x: Tensor<T>, _ w: Tensor<T>) -> (Int, Int, Int) {
        precondition(x.rank >= 2 && w.rank == 2, "Linear wants x [N, in], weight [out, in]")
        precondition(x.shape.last == w.shape[1], "Linear: x \(x.shape) vs weight \(w.shape)")
        return (x.count / w.shape[1], w.shape[1], w.shape[0])
    }
}

/// out[c] += Σ_r a[r, c] for a [rows, cols]; parallel over column blocks so
/// each output element has a single writer.
@inline(__always)
func sumRows<T: Scalar>(_ a: UnsafeMutablePointer<T>, rows: Int, cols: Int, into out: UnsafeMutablePointer<T>) {
    Parallel.forEach(cols, grain: 64) { cs in
        for r in 0..<rows {
            let row = a + r * cols
            for c in cs { out[c] += row[c] }
        }
    }
}
