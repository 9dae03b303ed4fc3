/// Scalar losses over whole tensors, reduced in Double. Backward accumulates
/// `scale · ∂loss/∂a` into da (scale = upstream gradient, 1 for the final loss).
public enum Loss {
    /// mean((a − b)²) over all elements (the ε-prediction objective).
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func mse<T: Scalar>(_ a: Tensor<T>, _ b: Tensor<T>) -> Double {
        precondition(a.shape == b.shape, "mse: \(a.shape) vs \(b.shape)")
        var s = 0.0
        for i in 0..<a.count {
            let d = Double(a.data[i]) - Double(b.data[i])
            s += d * d
        }
        return s / Double(max(a.count, 1))
    }

    /// da += scale · 2 (a − b) / n.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func mseBackward<T: Scalar>(_ a: Tensor<T>, _ b: Tensor<T>, da: Tensor<T>, scale: T = 1) {
        precondition(a.shape == b.shape && da.shape == a.shape, "mseBackward: shapes differ")
        let k = scale * 2 / T(max(a.count, 1))
        for i in 0..<a.count { da.data[i] += k * (a.data[i] - b.data[i]) }
    }

    /// mean(c ⊙ a): a fixed random projection, used to test backward passes.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func weightedMean<T: Scalar>(_ a: Tensor<T>, weights c: Tensor<T>) -> Double {
        precondition(a.shape == c.shape, "weightedMean: \(a.shape) vs \(c.shape)")
        var s = 0.0
        for i in 0..<a.count { s += Double(c.data[i]) * Double(a.data[i]) }
        return s / Double(max(a.count, 1))
    }

    /// da += scale · c / n.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func weightedMeanBackward<T: Scalar>(weights c: Tensor<T>, da: Tensor<T>, scale: T = 1) {
        precondition(da.shape == c.shape, "weightedMeanBackward: \(da.shape) vs \(c.shape)")
        let k = scale / T(max(c.count, 1))
        for i in 0..<c.count { da.data[i] += k * c.data[i] }
    }
}
