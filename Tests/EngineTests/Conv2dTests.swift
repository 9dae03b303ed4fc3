import Engine
import TestSupport
import XCTest

final class Conv2dTests: XCTestCase {
    /// Direct-summation convolution, the definition.
    func reference(_ x: Tensor<Double>, _ w: Tensor<Double>, _ b: Tensor<Double>?, stride: Int, padding: Int) -> Tensor<Double> {
        let (nb, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, k) = (w.shape[0], w.shape[2])
        let ho = (h + 2 * padding - k) / stride + 1, wo = (wd + 2 * padding - k) / stride + 1
        let y = Tensor<Double>(zeros: [nb, cout, ho, wo])
        for n in 0..<nb {
            for o in 0..<cout {
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        var s = b?[o] ?? 0
                        for c in 0..<cin {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    s += x[((n * cin + c) * h + iy) * wd + ix] * w[((o * cin + c) * k + ky) * k + kx]
                                }
                            }
                        }
                        y[((n * cout + o) * ho + oy) * wo + ox] = s
                    }
                }
            }
        }
        return y
    }

    let cases: [(kernel: Int, stride: Int, padding: Int)] = [(3, 1, 1), (3, 2, 1), (1, 1, 0)]

    func testForwardMatchesDirectConvolution() {
        var rng = TestRandom(seed: 10)
        for (k, s, p) in cases {
            for budget in [Conv2d.blockBudget, 7 * 3 * k * k] {  // whole image, and blocks of 7 pixels
                let saved = Conv2d.blockBudget
                Conv2d.blockBudget = budget
                defer { Conv2d.blockBudget = saved }
                let x = rng.tensor([2, 3, 5, 6]), w = rng.tensor([4, 3, k, k]), b = rng.tensor([4])
                let y = Conv2d.forward(x: x, weight: w, bias: b, stride: s, padding: p)
                let err = scaleRelative(y, reference(x, w, b, stride: s, padding: p))
                print("Conv2d \(k)x\(k)/\(s) forward (budget \(budget)) relative error \(err)")
                XCTAssertLessThanOrEqual(err, 1e-14)
            }
        }
    }

    func testBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 11)
        for (k, s, p) in cases {
            for budget in [Conv2d.blockBudget, 7 * 3 * k * k] {
                let saved = Conv2d.blockBudget
                Conv2d.blockBudget = budget
                defer { Conv2d.blockBudget = saved }
                let x = Checked("x", rng.tensor([2, 3, 5, 6]), rng: &rng)
                let w = Checked("weight", rng.tensor([4, 3, k, k]), rng: &rng)
                let b = Checked("bias", rng.tensor([4]), rng: &rng)
                let ho = (5 + 2 * p - k) / s + 1, wo = (6 + 2 * p - k) / s + 1
                let c = rng.tensor([2, 4, ho, wo])
                checkGradients("Conv2d \(k)x\(k)/\(s) budget \(budget)", [x, w, b]) {
                    project(Conv2d.forward(x: x.value, weight: w.value, bias: b.value, stride: s, padding: p), c)
                } backward: {
                    Conv2d.backward(dy: c, x: x.value, weight: w.value, stride: s, padding: p,
                                    dx: x.grad, dWeight: w.grad, dBias: b.grad)
                }
            }
        }
    }

    func testFloatMatchesDouble() {
        var rng = TestRandom(seed: 12)
        let x = rng.tensor([1, 8, 9, 9]), w = rng.tensor([5, 8, 3, 3])
        let yd = Conv2d.forward(x: x, weight: w, bias: nil, stride: 2, padding: 1)
        let yf = Conv2d.forward(x: x.converted(to: Float.self), weight: w.converted(to: Float.self),
                                bias: nil, stride: 2, padding: 1)
        let err = scaleRelative(yf.converted(to: Double.self), yd)
        print("Conv2d Float vs Double relative error \(err)")
        XCTAssertLessThanOrEqual(err, 1e-5)
    }

    /// x [B, C, H, W] with `after` zero rows and columns appended (bottom, right).
    func paddedAfter(_ x: Tensor<Double>, _ after: Int) -> Tensor<Double> {
        let (nb, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = Tensor<Double>(zeros: [nb, c, h + after, w + after])
        for p in 0..<(nb * c) {
            for i in 0..<h { for j in 0..<w { y[(p * (h + after) + i) * (w + after) + j] = x[(p * h + i) * w + j] } }
        }
        return y
    }

    /// Padding (0, 1, 0, 1) then stride 2 (the VAE downsampler) equals a convolution of the padded copy.
    func testTrailingPaddingMatchesPaddedInput() {
        var rng = TestRandom(seed: 13)
        for budget in [Conv2d.blockBudget, 7 * 3 * 9] {
            let saved = Conv2d.blockBudget
            Conv2d.blockBudget = budget
            defer { Conv2d.blockBudget = saved }
            let x = rng.tensor([2, 3, 6, 5]), w = rng.tensor([4, 3, 3, 3]), b = rng.tensor([4])
            let y = Conv2d.forward(x: x, weight: w, bias: b, stride: 2, padding: 0, trailingPadding: 1)
            XCTAssertEqual(y.shape, [2, 4, 3, 2])  // 6 + 1 and 5 + 1 padded, stride 2
            let err = scaleRelative(y, reference(paddedAfter(x, 1), w, b, stride: 2, padding: 0))
            print("Conv2d 3x3/2 padding (0, 1) forward (budget \(budget)) relative error \(err)")
            XCTAssertLessThanOrEqual(err, 1e-14)

            let xc = Checked("x", x, rng: &rng), wc = Checked("weight", w, rng: &rng), bc = Checked("bias", b, rng: &rng)
            let c = rng.tensor([2, 4, 3, 2])
            checkGradients("Conv2d 3x3/2 padding (0, 1) budget \(budget)", [xc, wc, bc]) {
                project(Conv2d.forward(x: xc.value, weight: wc.value, bias: bc.value, stride: 2, padding: 0, trailingPadding: 1), c)
            } backward: {
                Conv2d.backward(dy: c, x: xc.value, weight: wc.value, stride: 2, padding: 0, trailingPadding: 1,
                                dx: xc.grad, dWeight: wc.grad, dBias: bc.grad)
            }
        }
    }
}
