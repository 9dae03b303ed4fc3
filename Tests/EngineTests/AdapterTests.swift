import Engine
import TestSupport
import XCTest

final class AdapterTests: XCTestCase {
    let (n, inF, outF, rank, active) = (5, 6, 4, 4, 3)

    /// x · ΔWᵀ with ΔW formed explicitly (the definition; the engine never forms it).
    func referenceDelta(_ x: Tensor<Double>, _ dw: (Int, Int) -> Double) -> Tensor<Double> {
        Tensor(shape: [n, outF]) { idx in
            let r = idx / outF, o = idx % outF
            var s = 0.0
            for i in 0..<inF { s += dw(o, i) * x[r * inF + i] }
            return s
        }
    }

    func testLowRankForwardMatchesExplicitDelta() {
        var rng = TestRandom(seed: 60)
        let x = rng.tensor([n, inF]), down = rng.tensor([rank, inF]), up = rng.tensor([outF, rank])
        let base = rng.tensor([n, outF])
        let y = base.clone()
        LowRankAdapter.forward(x: x, factors: .lowRank(down: down, up: up, scale: 0.5), active: active, y: y)
        let delta = referenceDelta(x) { o, i in
            0.5 * (0..<self.active).reduce(0.0) { $0 + up[o * self.rank + $1] * down[$1 * self.inF + i] }
        }
        let expected = Tensor<Double>(shape: base.shape) { base[$0] + delta[$0] }
        let err = scaleRelative(y, expected)
        print("LowRankAdapter low-rank forward relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-14)
    }

    func testOrthoForwardMatchesExplicitDelta() {
        var rng = TestRandom(seed: 61)
        let x = rng.tensor([n, inF])
        let (q, p, l) = (rng.tensor([rank, inF]), rng.tensor([outF, rank]), rng.tensor([rank]))
        let (q0, p0, l0) = (rng.tensor([rank, inF]), rng.tensor([outF, rank]), rng.tensor([rank]))
        let y = Tensor<Double>(zeros: [n, outF])
        LowRankAdapter.forward(x: x, factors: .ortho(q: q, p: p, lambda: l, q0: q0, p0: p0, lambda0: l0), active: active, y: y)
        let delta = referenceDelta(x) { o, i in
            (0..<self.active).reduce(0.0) {
                $0 + p[o * self.rank + $1] * l[$1] * q[$1 * self.inF + i] - p0[o * self.rank + $1] * l0[$1] * q0[$1 * self.inF + i]
            }
        }
        let err = scaleRelative(y, delta)
        print("LowRankAdapter ortho forward relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-14)
        // Trainable factors equal to their frozen copies: ΔW ≡ 0.
        let z = Tensor<Double>(zeros: [n, outF])
        LowRankAdapter.forward(x: x, factors: .ortho(q: q, p: p, lambda: l, q0: q, p0: p, lambda0: l), active: rank, y: z)
        XCTAssertLessThanOrEqual(maxAbs(z), 1e-15)
    }

    /// Gradient of masked components (index ≥ active) must be exactly zero.
    func assertMaskedUntouched(_ c: Checked, rowsMasked: Bool, file: StaticString = #filePath, line: UInt = #line) {
        let inc = c.increment
        for idx in 0..<inc.count {
            let component = rowsMasked ? idx / c.value.shape.last! : (c.value.rank == 1 ? idx : idx % c.value.shape[1])
            if component >= active { XCTAssertEqual(inc[idx], 0, "\(c.name)[\(idx)]", file: file, line: line) }
        }
    }

    func testLowRankBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 62)
        let x = Checked("x", rng.tensor([n, inF]), rng: &rng)
        let down = Checked("down", rng.tensor([rank, inF]), rng: &rng)
        let up = Checked("up", rng.tensor([outF, rank]), rng: &rng)
        let c = rng.tensor([n, outF])
        func factors() -> AdapterFactors<Double> { .lowRank(down: down.value, up: up.value, scale: 0.7) }
        // Finite differences see masked entries as constant; the check compares all entries.
        checkGradients("adapter low-rank", [x, down, up]) {
            let y = Tensor<Double>(zeros: [n, outF])
            LowRankAdapter.forward(x: x.value, factors: factors(), active: active, y: y)
            return project(y, c)
        } backward: {
            LowRankAdapter.backward(dy: c, x: x.value, factors: factors(), active: active,
                                    dx: x.grad, gradients: .lowRank(down: down.grad, up: up.grad))
        }
        assertMaskedUntouched(down, rowsMasked: true)
        assertMaskedUntouched(up, rowsMasked: false)
    }

    func testOrthoBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 63)
        let x = Checked("x", rng.tensor([n, inF]), rng: &rng)
        let q = Checked("q", rng.tensor([rank, inF]), rng: &rng)
        let p = Checked("p", rng.tensor([outF, rank]), rng: &rng)
        let l = Checked("lambda", rng.tensor([rank]), rng: &rng)
        let (q0, p0, l0) = (rng.tensor([rank, inF]), rng.tensor([outF, rank]), rng.tensor([rank]))
        let c = rng.tensor([n, outF])
        func factors() -> AdapterFactors<Double> {
            .ortho(q: q.value, p: p.value, lambda: l.value, q0: q0, p0: p0, lambda0: l0)
        }
        checkGradients("adapter ortho", [x, q, p, l]) {
            let y = Tensor<Double>(zeros: [n, outF])
            LowRankAdapter.forward(x: x.value, factors: factors(), active: active, y: y)
            return project(y, c)
        } backward: {
            LowRankAdapter.backward(dy: c, x: x.value, factors: factors(), active: active,
                                    dx: x.grad, gradients: .ortho(q: q.grad, p: p.grad, lambda: l.grad))
        }
        assertMaskedUntouched(q, rowsMasked: true)
        assertMaskedUntouched(p, rowsMasked: false)
        assertMaskedUntouched(l, rowsMasked: false)
    }

    func testLosses() {
        var rng = TestRandom(seed: 64)
        let a = Checked("a", rng.tensor([3, 4]), rng: &rng)
        let b = rng.tensor([3, 4]), c = rng.tensor([3, 4])
        XCTAssertEqual(Loss.mse(b, b), 0)
        XCTAssertEqual(Loss.mse(Tensor<Double>(shape: [2], values: [1, 3]), Tensor(shape: [2], values: [0, 0])), 5)
        checkGradients("mse", [a]) { Loss.mse(a.value, b) } backward: { Loss.mseBackward(a.value, b, da: a.grad) }
        let w = Checked("a", rng.tensor([3, 4]), rng: &rng)
        checkGradients("weightedMean", [w]) {
            Loss.weightedMean(w.value, weights: c)
        } backward: {
            Loss.weightedMeanBackward(weights: c, da: w.grad)
        }
    }
}
