import Engine
import TestSupport
import XCTest

final class NormTests: XCTestCase {
    /// Without affine parameters every group has mean 0 and variance 1 (up to eps).
    func testGroupNormNormalisesEachGroup() {
        var rng = TestRandom(seed: 20)
        let x = rng.tensor([2, 6, 4, 5], scale: 3)
        let y = Tensor<Double>(zeros: x.shape)
        _ = GroupNorm.forward(x: x, groups: 3, eps: 0, gamma: nil, beta: nil, y: y)
        let m = 2 * 20  // channels per group · pixels
        for item in 0..<(2 * 3) {
            var mean = 0.0, sq = 0.0
            for i in 0..<m { mean += y[item * m + i] }
            mean /= Double(m)
            for i in 0..<m { sq += (y[item * m + i] - mean) * (y[item * m + i] - mean) }
            XCTAssertEqual(mean, 0, accuracy: 1e-14)
            XCTAssertEqual(sq / Double(m), 1, accuracy: 1e-13)
        }
    }

    /// Float input with a large common offset: Double two-pass statistics keep
    /// the normalised values accurate where E[x²] − E[x]² in Float would not.
    func testGroupNormLargeOffsetInFloat() {
        var rng = TestRandom(seed: 21)
        let noise = rng.tensor([1, 4, 16, 16])
        let x = Tensor<Float>(shape: noise.shape) { Float(1000 + 0.01 * noise[$0]) }
        let y = Tensor<Float>(zeros: x.shape)
        _ = GroupNorm.forward(x: x, groups: 2, eps: 1e-6, gamma: nil, beta: nil, y: y)
        // Reference: the same statistics from the Float values, in Double.
        let xd = x.converted(to: Double.self), ref = Tensor<Double>(zeros: x.shape)
        _ = GroupNorm.forward(x: xd, groups: 2, eps: 1e-6, gamma: nil, beta: nil, y: ref)
        let err = scaleRelative(y.converted(to: Double.self), ref)
        print("GroupNorm Float large-offset relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-5)
    }

    func testGroupNormBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 22)
        let x = Checked("x", rng.tensor([2, 4, 3, 2], scale: 2), rng: &rng)
        let gamma = Checked("gamma", rng.tensor([4]), rng: &rng)
        let beta = Checked("beta", rng.tensor([4]), rng: &rng)
        let c = rng.tensor(x.value.shape)
        let y = Tensor<Double>(zeros: x.value.shape)
        func run() -> NormStats {
            GroupNorm.forward(x: x.value, groups: 2, eps: 1e-5, gamma: gamma.value, beta: beta.value, y: y)
        }
        checkGradients("GroupNorm", [x, gamma, beta]) {
            _ = run()
            return project(y, c)
        } backward: {
            let stats = run()
            GroupNorm.backward(dy: c, x: x.value, stats: stats, groups: 2, gamma: gamma.value,
                               dx: x.grad, dGamma: gamma.grad, dBeta: beta.grad)
        }
    }

    func testLayerNormNormalisesEachRow() {
        var rng = TestRandom(seed: 23)
        let x = rng.tensor([5, 7], scale: 4)
        let gamma = rng.tensor([7]), beta = rng.tensor([7])
        let y = Tensor<Double>(zeros: x.shape)
        _ = LayerNorm.forward(x: x, eps: 0, gamma: gamma, beta: beta, y: y)
        for r in 0..<5 {
            // Undo the affine map, then check the moments.
            let z = (0..<7).map { (y[r * 7 + $0] - beta[$0]) / gamma[$0] }
            let mean = z.reduce(0, +) / 7
            let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 7
            XCTAssertEqual(mean, 0, accuracy: 1e-13)
            XCTAssertEqual(variance, 1, accuracy: 1e-12)
        }
    }

    func testLayerNormBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 24)
        let x = Checked("x", rng.tensor([2, 3, 6], scale: 2), rng: &rng)
        let gamma = Checked("gamma", rng.tensor([6]), rng: &rng)
        let beta = Checked("beta", rng.tensor([6]), rng: &rng)
        let c = rng.tensor(x.value.shape)
        let y = Tensor<Double>(zeros: x.value.shape)
        func run() -> NormStats {
            LayerNorm.forward(x: x.value, eps: 1e-5, gamma: gamma.value, beta: beta.value, y: y)
        }
        checkGradients("LayerNorm", [x, gamma, beta]) {
            _ = run()
            return project(y, c)
        } backward: {
            let stats = run()
            LayerNorm.backward(dy: c, x: x.value, stats: stats, gamma: gamma.value,
                               dx: x.grad, dGamma: gamma.grad, dBeta: beta.grad)
        }
    }
}
