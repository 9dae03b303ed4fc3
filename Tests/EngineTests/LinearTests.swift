import Engine
import TestSupport
import XCTest

final class LinearTests: XCTestCase {
    /// y[n, o] = Σ_i x[n, i] · w[o, i] + b[o], written out by hand.
    func testForwardMatchesDefinition() {
        var rng = TestRandom(seed: 1)
        let x = rng.tensor([3, 5]), w = rng.tensor([4, 5]), b = rng.tensor([4])
        let y = Linear.forward(x: x, weight: w, bias: b)
        let expected = Tensor<Double>(shape: [3, 4]) { idx in
            let n = idx / 4, o = idx % 4
            var s = b[o]
            for i in 0..<5 { s += x[n * 5 + i] * w[o * 5 + i] }
            return s
        }
        let err = scaleRelative(y, expected)
        print("Linear forward relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-14)
    }

    func testBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 2)
        let x = Checked("x", rng.tensor([3, 5]), rng: &rng)
        let w = Checked("weight", rng.tensor([4, 5]), rng: &rng)
        let b = Checked("bias", rng.tensor([4]), rng: &rng)
        let c = rng.tensor([3, 4])
        checkGradients("Linear", [x, w, b]) {
            project(Linear.forward(x: x.value, weight: w.value, bias: b.value), c)
        } backward: {
            Linear.backward(dy: c, x: x.value, weight: w.value, dx: x.grad, dWeight: w.grad, dBias: b.grad)
        }
    }

    /// A frozen layer passes nil gradients: only dx is touched.
    func testFrozenWeightsNeedNoGradientBuffers() {
        var rng = TestRandom(seed: 3)
        let x = rng.tensor([2, 3]), w = rng.tensor([2, 3]), dy = rng.tensor([2, 2])
        let dx = Tensor<Double>(zeros: [2, 3])
        Linear.backward(dy: dy, x: x, weight: w, dx: dx, dWeight: nil, dBias: nil)
        // dx = dy · w
        XCTAssertEqual(dx[0], dy[0] * w[0] + dy[1] * w[3], accuracy: 1e-15)
    }

    /// The Float path (sgemm) agrees with the Double path.
    func testFloatMatchesDouble() {
        var rng = TestRandom(seed: 4)
        let x = rng.tensor([17, 33]), w = rng.tensor([9, 33]), b = rng.tensor([9])
        let yd = Linear.forward(x: x, weight: w, bias: b)
        let yf = Linear.forward(x: x.converted(to: Float.self), weight: w.converted(to: Float.self),
                                bias: b.converted(to: Float.self))
        let err = scaleRelative(yf.converted(to: Double.self), yd)
        print("Linear Float vs Double relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-5)
    }

    /// Leading dimensions flatten into N: [2, 3, in] behaves as [6, in].
    func testLeadingDimensions() {
        var rng = TestRandom(seed: 5)
        let x = rng.tensor([2, 3, 5]), w = rng.tensor([4, 5])
        let y = Linear.forward(x: x, weight: w, bias: nil)
        XCTAssertEqual(y.shape, [2, 3, 4])
        XCTAssertEqual(y.array, Linear.forward(x: x.reshaped([6, 5]), weight: w, bias: nil).array)
    }
}
