import Engine
import Foundation
import TestSupport
import XCTest

final class AttentionTests: XCTestCase {
    /// Per-head attention written out with explicit loops.
    func reference(_ q: Tensor<Double>, _ k: Tensor<Double>, _ v: Tensor<Double>, heads: Int, causal: Bool) -> Tensor<Double> {
        let (nb, lq, width, lk) = (q.shape[0], q.shape[1], q.shape[2], k.shape[1])
        let d = width / heads
        let out = Tensor<Double>(zeros: q.shape)
        for b in 0..<nb {
            for h in 0..<heads {
                for i in 0..<lq {
                    var logits = [Double](repeating: -.infinity, count: lk)
                    for j in 0..<lk where !causal || j <= i {
                        var s = 0.0
                        for e in 0..<d { s += q[(b * lq + i) * width + h * d + e] * k[(b * lk + j) * width + h * d + e] }
                        logits[j] = s / sqrt(Double(d))
                    }
                    let mx = logits.max()!
                    let w = logits.map { exp($0 - mx) }
                    let z = w.reduce(0, +)
                    for e in 0..<d {
                        var s = 0.0
                        for j in 0..<lk { s += w[j] / z * v[(b * lk + j) * width + h * d + e] }
                        out[(b * lq + i) * width + h * d + e] = s
                    }
                }
            }
        }
        return out
    }

    func testProbabilitiesAreRowStochastic() {
        var rng = TestRandom(seed: 40)
        // Large logits: a softmax without max subtraction would overflow to inf/nan.
        let q = rng.tensor([1, 5, 4], scale: 30), k = rng.tensor([1, 5, 4], scale: 30)
        for causal in [false, true] {
            let p = Attention.probabilities(q: q, k: k, heads: 2, causal: causal)
            XCTAssertEqual(p.shape, [1, 2, 5, 5])
            for row in 0..<10 {
                let i = row % 5
                var sum = 0.0
                for j in 0..<5 {
                    let value = p[row * 5 + j]
                    XCTAssertTrue(value.isFinite && value >= 0)
                    if causal && j > i { XCTAssertEqual(value, 0) }
                    sum += value
                }
                XCTAssertEqual(sum, 1, accuracy: 1e-14)
            }
        }
    }

    func testForwardMatchesReference() {
        var rng = TestRandom(seed: 41)
        let cases: [(lq: Int, lk: Int, causal: Bool, budget: Int)] = [
            (6, 6, false, Attention.blockBudget), (5, 3, false, Attention.blockBudget),
            (7, 7, true, Attention.blockBudget), (7, 7, true, 14),  // 14: blocks of 2 query rows
        ]
        for c in cases {
            let saved = Attention.blockBudget
            Attention.blockBudget = c.budget
            defer { Attention.blockBudget = saved }
            let q = rng.tensor([2, c.lq, 6]), k = rng.tensor([2, c.lk, 6]), v = rng.tensor([2, c.lk, 6])
            let out = Attention.forward(q: q, k: k, v: v, heads: 3, causal: c.causal)
            let err = scaleRelative(out, reference(q, k, v, heads: 3, causal: c.causal))
            print("Attention forward \(c) relative error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-14)
        }
    }

    func testBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 42)
        let cases: [(lq: Int, lk: Int, causal: Bool, budget: Int)] = [
            (4, 5, false, Attention.blockBudget), (5, 5, true, Attention.blockBudget), (5, 5, true, 10),
        ]
        for c in cases {
            let saved = Attention.blockBudget
            Attention.blockBudget = c.budget
            defer { Attention.blockBudget = saved }
            let q = Checked("q", rng.tensor([2, c.lq, 4]), rng: &rng)
            let k = Checked("k", rng.tensor([2, c.lk, 4]), rng: &rng)
            let v = Checked("v", rng.tensor([2, c.lk, 4]), rng: &rng)
            let proj = rng.tensor([2, c.lq, 4])
            checkGradients("Attention \(c)", [q, k, v]) {
                project(Attention.forward(q: q.value, k: k.value, v: v.value, heads: 2, causal: c.causal), proj)
            } backward: {
                Attention.backward(dOut: proj, q: q.value, k: k.value, v: v.value, heads: 2, causal: c.causal,
                                   dq: q.grad, dk: k.grad, dv: v.grad)
            }
        }
    }

    func testFloatMatchesDouble() {
        var rng = TestRandom(seed: 43)
        let q = rng.tensor([1, 9, 8]), k = rng.tensor([1, 11, 8]), v = rng.tensor([1, 11, 8])
        let od = Attention.forward(q: q, k: k, v: v, heads: 2)
        let of = Attention.forward(q: q.converted(to: Float.self), k: k.converted(to: Float.self),
                                   v: v.converted(to: Float.self), heads: 2)
        let err = scaleRelative(of.converted(to: Double.self), od)
        print("Attention Float vs Double relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-5)
    }
}

final class AttentionThreadingTests: XCTestCase {
    /// One head per thread (BLAS serial) and heads in turn (rows parallel) agree.
    func testHeadParallelAndRowParallelAgree() {
        var rng = TestRandom(seed: 44)
        let q = rng.tensor([1, 6, 8]), k = rng.tensor([1, 5, 8]), v = rng.tensor([1, 5, 8]), dOut = rng.tensor([1, 6, 8])
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        var results: [[Double]] = []
        for threads in [1, 2, 3] {  // 2 heads: threads 2 runs heads concurrently, 3 splits rows
            Parallel.threads = threads
            let out = Attention.forward(q: q, k: k, v: v, heads: 2)
            let (dq, dk, dv) = (Tensor<Double>(zeros: q.shape), Tensor<Double>(zeros: k.shape), Tensor<Double>(zeros: v.shape))
            Attention.backward(dOut: dOut, q: q, k: k, v: v, heads: 2, dq: dq, dk: dk, dv: dv)
            results.append(out.array + dq.array + dk.array + dv.array)
        }
        for r in results.dropFirst() {
            let err = zip(r, results[0]).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err, 1e-14)
        }
    }
}
