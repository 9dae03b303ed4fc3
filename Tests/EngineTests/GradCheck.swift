import Engine
import TestSupport
import XCTest

/// The gradient checks' random inputs (SplitMix64, so failures reproduce).
typealias TestRandom = SplitMix64

extension SplitMix64 {
    /// Uniform in [-1, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 52) - 1 }

    mutating func tensor(_ shape: [Int], scale: Double = 1) -> Tensor<Double> {
        var values: [Double] = []
        for _ in 0..<shape.reduce(1, *) { values.append(scale * uniform()) }
        return Tensor(shape: shape, values: values)
    }
}

/// Σ c ⊙ y, the scalar whose gradient with respect to y is c.
func project(_ y: Tensor<Double>, _ c: Tensor<Double>) -> Double {
    var s = 0.0
    for i in 0..<y.count { s += y[i] * c[i] }
    return s
}

/// One differentiable input of a gradient check: the tensor the loss reads and
/// the gradient buffer the backward pass accumulated into (pre-filled with `start`).
struct Checked {
    let name: String
    let value: Tensor<Double>
    let grad: Tensor<Double>
    let start: Tensor<Double>

    /// A gradient buffer pre-filled with random values, so that a backward
    /// pass that overwrites instead of accumulating fails the check.
    init(_ name: String, _ value: Tensor<Double>, rng: inout TestRandom) {
        self.name = name
        self.value = value
        start = rng.tensor(value.shape)
        grad = start.clone()
    }

    /// What backward added to the buffer.
    var increment: Tensor<Double> {
        Tensor(shape: grad.shape) { grad[$0] - start[$0] }
    }
}

/// Central-difference check of analytic gradients in Float64.
/// `loss` recomputes the scalar from the current input values; `backward`
/// (run once, before perturbing) must accumulate ∂loss/∂input into each `grad`.
/// Asserts max|numeric − analytic| ≤ tol · max|analytic| per input and prints it.
func checkGradients(
    _ label: String, _ inputs: [Checked], tol: Double = 1e-6, eps: Double = 1e-5,
    loss: () -> Double, backward: () -> Void,
    file: StaticString = #filePath, line: UInt = #line
) {
    backward()
    for input in inputs {
        let numeric = Tensor<Double>(zeros: input.value.shape)
        for i in 0..<input.value.count {
            let saved = input.value[i]
            input.value[i] = saved + eps
            let plus = loss()
            input.value[i] = saved - eps
            let minus = loss()
            input.value[i] = saved
            numeric[i] = (plus - minus) / (2 * eps)
        }
        let err = scaleRelative(input.increment, numeric)
        print("gradcheck \(label) d\(input.name): relative error \(err) (tol \(tol))")
        XCTAssertLessThanOrEqual(err, tol, "\(label) d\(input.name)", file: file, line: line)
        XCTAssertGreaterThan(maxAbs(numeric), 0, "\(label) d\(input.name) is identically zero", file: file, line: line)
    }
}

func maxAbs<T: Scalar>(_ t: Tensor<T>) -> Double {
    var m = 0.0
    for i in 0..<t.count { m = max(m, abs(Double(t[i]))) }
    return m
}
