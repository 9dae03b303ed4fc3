import Engine
import Foundation
import TestSupport
import XCTest

final class ActivationTests: XCTestCase {
    func testKnownValues() {
        let x = Tensor<Double>(shape: [3], values: [1, -2, 0.5])
        let gelu = Activation.gelu.forward(x)
        XCTAssertEqual(gelu[0], 0.8413447460685429, accuracy: 1e-15)
        XCTAssertEqual(gelu[1], -0.04550026389635842, accuracy: 1e-15)
        let silu = Activation.silu.forward(x)
        XCTAssertEqual(silu[0], 1 / (1 + exp(-1.0)), accuracy: 1e-15)
        XCTAssertEqual(silu[1], -2 / (1 + exp(2.0)), accuracy: 1e-15)
        let quick = Activation.quickGELU.forward(x)
        XCTAssertEqual(quick[2], 0.5 / (1 + exp(-0.851)), accuracy: 1e-15)
        // Large |x| must not overflow the sigmoid.
        let big = Activation.silu.forward(Tensor<Float>(shape: [2], values: [-200, 200]))
        XCTAssertEqual(big[0], 0, accuracy: 1e-30)
        XCTAssertEqual(big[1], 200)
    }

    /// y = x (in place) takes its own loop; it must give exactly what a separate output gets.
    func testInPlaceEqualsOutOfPlace() {
        var rng = TestRandom(seed: 31)
        for kind in [Activation.silu, .gelu, .quickGELU] {
            let x = rng.tensor([3, 20_000], scale: 4).converted(to: Float.self)
            let expected = kind.forward(x)
            kind.forward(x: x, y: x)
            XCTAssertEqual(x.array, expected.array, "\(kind)")
        }
    }

    func testBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 30)
        for kind in [Activation.silu, .gelu, .quickGELU] {
            let x = Checked("x", rng.tensor([4, 5], scale: 3), rng: &rng)
            let c = rng.tensor([4, 5])
            checkGradients("\(kind)", [x]) {
                project(kind.forward(x.value), c)
            } backward: {
                kind.backward(dy: c, x: x.value, dx: x.grad)
            }
        }
    }

    /// diffusers: hidden, gate = proj(x).chunk(2) → hidden · gelu(gate).
    func testGEGLUOrder() {
        let p = Tensor<Double>(shape: [1, 4], values: [2, 3, 1, -2])
        let y = Tensor<Double>(zeros: [1, 2])
        GEGLU.forward(p: p, y: y)
        XCTAssertEqual(y[0], 2 * 0.8413447460685429, accuracy: 1e-15)
        XCTAssertEqual(y[1], 3 * -0.04550026389635842, accuracy: 1e-15)
    }

    func testGEGLUBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 31)
        let p = Checked("p", rng.tensor([3, 8], scale: 2), rng: &rng)
        let c = rng.tensor([3, 4])
        let y = Tensor<Double>(zeros: [3, 4])
        checkGradients("GEGLU", [p]) {
            GEGLU.forward(p: p.value, y: y)
            return project(y, c)
        } backward: {
            GEGLU.backward(dy: c, p: p.value, dp: p.grad)
        }
    }
}

/// The Float hot-loop exp and erf against libm over their working range.
final class FastMathTests: XCTestCase {
    func testFastExpAndErfAccuracy() {
        var worstExp = 0.0, worstErf = 0.0
        var x: Float = -87
        while x < 88 {
            let exact = Foundation.exp(Double(x))
            worstExp = max(worstExp, abs(Double(Float.fastExp(x)) - exact) / exact)
            x += 0.0137
        }
        x = -6
        while x < 6 {
            worstErf = max(worstErf, abs(Double(Float.fastErf(x)) - Foundation.erf(Double(x))))
            x += 0.000_97
        }
        print("fastExp max relative error \(worstExp), fastErf max abs error \(worstErf)")
        XCTAssertLessThanOrEqual(worstExp, 4 * Double(Float.ulpOfOne))
        XCTAssertLessThanOrEqual(worstErf, 6e-7)  // formula 1.5e-7 plus Float rounding near |erf| = 1
        XCTAssertEqual(Float.fastExp(-1000), 0, accuracy: 1e-37)
        XCTAssertTrue(Float.fastExp(1000).isFinite)
    }
}
