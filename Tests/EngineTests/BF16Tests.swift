@testable import Engine
import Foundation
import TestSupport
import Testing

/// The bf16 kernels against Float32 arithmetic on the same bf16-rounded operands: rounding the inputs is
/// the only approximation bf16 makes here (oneDNN accumulates in Float32), so what remains is summation
/// order, within 1e-5 of the output's scale. A second check bounds the whole bf16 error against the
/// unrounded Float32 product (≤ 1e-2, about 2⁻⁸ · √k for random operands of size k).
@Suite(.enabled(if: Precision.hardwareHasBF16, "needs native bf16 (AVX-512 BF16 or AMX); skipped on this CPU"))
struct BF16Tests {
    @Test func roundsToNearestEvenAsPyTorch() {
        #expect(BFloat16.bits(1) == 0x3F80)
        #expect(BFloat16.bits(-2) == 0xC000)
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        #expect(BFloat16.bits(1 + 0x1p-8) == 0x3F80)
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: even is 1 + 2⁻⁶.
        #expect(BFloat16.bits(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(BFloat16.bits(1 + 0x1p-8 + 0x1p-20) == 0x3F81)
        #expect(BFloat16.bits(.infinity) == 0x7F80 && BFloat16.bits(-.infinity) == 0xFF80)
        #expect(BFloat16.float(BFloat16.bits(.nan)).isNaN)
        // The largest Float32 rounds up past bf16's largest finite value: infinity, as torch's conversion.
        #expect(BFloat16.bits(.greatestFiniteMagnitude) == 0x7F80)
        #expect(BFloat16.rounded(3.140625) == 3.140625)
    }

    @Test(arguments: [(1, 7, 5), (37, 64, 48), (300, 96, 160)])
    func linearMatchesRoundedFloat32(n: Int, inF: Int, outF: Int) {
        var rng = TestRandom(seed: UInt64(n * 1000 + inF))
        let x = rng.floats([n, inF]), w = rng.floats([outF, inF]), b = rng.floats([outF])
        let layer = BF16Linear(weight: w)
        let y = layer.forward(x: x, bias: b)
        let exact = Linear.forward(x: rounded(x), weight: rounded(w), bias: b)
        let err = scaleRelative(y, exact), whole = scaleRelative(y, Linear.forward(x: x, weight: w, bias: b))
        print("BF16Linear \(n)×\(inF)×\(outF): vs rounded operands \(err), vs Float32 \(whole)")
        #expect(err <= 1e-5)
        #expect(whole <= 1e-2)

        // Backward data accumulates into dx like Linear.backward.
        let dy = rng.floats([n, outF]), dx = rng.floats([n, inF]), dxRef = dx.clone()
        layer.backwardData(dy: dy, dx: dx)
        Linear.backward(dy: rounded(dy), x: x, weight: rounded(w), dx: dxRef, dWeight: nil, dBias: nil)
        let backErr = scaleRelative(dx, dxRef)
        print("BF16Linear \(n)×\(inF)×\(outF) backward: \(backErr)")
        #expect(backErr <= 1e-5)

        // Overwriting sets dx whatever it held (what a layer's fresh, uninitialised dx relies on), and one
        // rounding of dy shared by callers gives the same result.
        let set = Tensor<Float>(shape: [n, inF]) { _ in .nan }, fromZero = Tensor<Float>(zeros: [n, inF])
        BFloat16.withRounded(dy) { layer.backwardData(dy: $0, dx: set, overwriting: true) }
        layer.backwardData(dy: dy, dx: fromZero)
        #expect(set.array == fromZero.array)
    }

    @Test func linearRunsOnNativeBF16Kernels() {
        var rng = TestRandom(seed: 3)
        let layer = BF16Linear(weight: rng.floats([64, 64]))
        let impl = layer.forwardImplementation(rows: 128)
        print("BF16Linear implementation: \(impl)")
        #expect(impl.contains("bf16") && !impl.contains("ref"), "\(impl)")
    }

    /// (kernel, stride, padding, trailing padding): SDXL's 3×3, its stride-2 downsampler, 1×1 shortcuts,
    /// and the VAE encoder's (0, 1) padded downsampler.
    static let convCases = [(3, 1, 1, 1), (3, 2, 1, 1), (1, 1, 0, 0), (3, 2, 0, 1)]

    @Test(arguments: convCases)
    func convolutionMatchesRoundedFloat32(kernel: Int, stride: Int, padding: Int, trailing: Int) {
        var rng = TestRandom(seed: UInt64(kernel * 10 + stride))
        let x = rng.floats([2, 24, 10, 12]), w = rng.floats([40, 24, kernel, kernel]), b = rng.floats([40])
        let layer = BF16Conv2d(weight: w, stride: stride, padding: padding, trailingPadding: trailing)
        let y = layer.forward(x: x, bias: b)
        let exact = Conv2d.forward(x: rounded(x), weight: rounded(w), bias: b, stride: stride, padding: padding, trailingPadding: trailing)
        let err = scaleRelative(y, exact)
        let whole = scaleRelative(y, Conv2d.forward(x: x, weight: w, bias: b, stride: stride, padding: padding, trailingPadding: trailing))
        print("BF16Conv2d \(kernel)×\(kernel)/\(stride) pad (\(padding), \(trailing)): vs rounded operands \(err), vs Float32 \(whole)")
        #expect(err <= 1e-5)
        #expect(whole <= 1e-2)

        let dy = rng.floats(y.shape), dx = rng.floats(x.shape), dxRef = dx.clone()
        layer.backwardData(dy: dy, dx: dx)
        Conv2d.backward(dy: rounded(dy), x: x, weight: rounded(w), stride: stride, padding: padding, trailingPadding: trailing,
                        dx: dxRef, dWeight: nil, dBias: nil)
        let backErr = scaleRelative(dx, dxRef)
        print("BF16Conv2d \(kernel)×\(kernel)/\(stride) backward: \(backErr)")
        #expect(backErr <= 1e-5)
        // Overwriting sets dx whatever it held.
        let set = Tensor<Float>(shape: x.shape) { _ in .nan }, fromZero = Tensor<Float>(zeros: x.shape)
        layer.backwardData(dy: dy, dx: set, overwriting: true)
        layer.backwardData(dy: dy, dx: fromZero)
        #expect(set.array == fromZero.array)
        // Another input size gets its own primitive (and, if it asks for one, its own weight layout).
        let small = rng.floats([1, 24, 6, 8])
        let smallErr = scaleRelative(layer.forward(x: small, bias: nil), Conv2d.forward(
            x: rounded(small), weight: rounded(w), bias: nil, stride: stride, padding: padding, trailingPadding: trailing))
        #expect(smallErr <= 1e-5)
    }

    /// Without a kept backward copy the weight is reordered per call: the same dx bit for bit, one weight copy.
    @Test(arguments: convCases)
    func convolutionBackwardWithoutKeptWeights(kernel: Int, stride: Int, padding: Int, trailing: Int) {
        var rng = TestRandom(seed: UInt64(kernel * 100 + stride))
        let x = rng.floats([2, 24, 10, 12]), w = rng.floats([40, 24, kernel, kernel])
        let kept = BF16Conv2d(weight: w, stride: stride, padding: padding, trailingPadding: trailing)
        let lean = BF16Conv2d(weight: w, stride: stride, padding: padding, trailingPadding: trailing)
        lean.keepsBackwardWeights = false
        let y = kept.forward(x: x, bias: nil)
        #expect(lean.forward(x: x, bias: nil).array == y.array)
        let dy = rng.floats(y.shape)
        let (a, b) = (Tensor<Float>(uninitialized: x.shape), Tensor<Float>(uninitialized: x.shape))
        let forwardCopy = lean.bytes
        kept.backwardData(dy: dy, dx: a, overwriting: true)
        lean.backwardData(dy: dy, dx: b, overwriting: true)
        #expect(a.array == b.array)
        #expect(lean.bytes == forwardCopy, "no copy kept for the backward")
        #expect(kept.bytes >= lean.bytes)
    }

    @Test func convolutionRunsOnNativeBF16Kernels() {
        var rng = TestRandom(seed: 4)
        let layer = BF16Conv2d(weight: rng.floats([64, 64, 3, 3]), padding: 1)
        let impl = layer.forwardImplementation(batch: 1, height: 16, width: 16)
        print("BF16Conv2d implementation: \(impl)")
        #expect(impl.contains("bf16") && !impl.contains("ref"), "\(impl)")
    }

    /// Attention with bf16 products: besides the operands, P is rounded before P·V (and dS before its
    /// products), so the bound is bf16's relative step over Float32 attention, not summation order.
    @Test func attentionFollowsFloat32() {
        var rng = TestRandom(seed: 7)
        let (b, lq, lk, heads, d) = (2, 40, 24, 3, 16)
        let q = rng.floats([b, lq, heads * d]), k = rng.floats([b, lk, heads * d]), v = rng.floats([b, lk, heads * d])
        let saved = Attention.blockBudget
        Attention.blockBudget = 16 * lk  // several query blocks per head
        defer { Attention.blockBudget = saved }
        let out = BF16Attention.forward(q: q, k: k, v: v, heads: heads)
        let ref = Attention.forward(q: q, k: k, v: v, heads: heads)
        let err = scaleRelative(out, ref)
        print("BF16Attention forward vs Float32: \(err)")
        #expect(err <= 1e-2)

        let dOut = rng.floats(out.shape)
        let (dq, dk, dv) = (Tensor<Float>(zeros: q.shape), Tensor<Float>(zeros: k.shape), Tensor<Float>(zeros: v.shape))
        let (rq, rk, rv) = (Tensor<Float>(zeros: q.shape), Tensor<Float>(zeros: k.shape), Tensor<Float>(zeros: v.shape))
        BF16Attention.backward(dOut: dOut, q: q, k: k, v: v, heads: heads, dq: dq, dk: dk, dv: dv)
        Attention.backward(dOut: dOut, q: q, k: k, v: v, heads: heads, dq: rq, dk: rk, dv: rv)
        let errs = [scaleRelative(dq, rq), scaleRelative(dk, rk), scaleRelative(dv, rv)]
        print("BF16Attention backward vs Float32 (dq, dk, dv): \(errs)")
        #expect(errs.allSatisfy { $0 <= 2e-2 })
    }

    /// The fused kernels (head width 64): query rows across several 48-row blocks and a ragged last one,
    /// keys across several 256-key softmax chunks and a ragged last one (77 is a text encoder's length).
    /// Against Float32 on unrounded operands the bound is bf16's, as above; against Float64 on the same
    /// rounded operands only the rounding of P before P·V remains (2⁻⁹ relative per element).
    @Test(arguments: [(100, 77), (50, 300), (97, 600)])
    func fusedAttentionFollowsFloat32(lq: Int, lk: Int) {
        #expect(FusedAttention.supported)
        // The kernel is what BF16Attention runs unless the environment asks for the oneDNN products.
        if ["", "0"].contains(ProcessInfo.processInfo.environment["TLKIT_UNFUSED_ATTENTION"] ?? "") { #expect(FusedAttention.enabled) }
        var rng = TestRandom(seed: 11)
        let (b, heads, d) = (2, 3, 64)
        let q = rng.floats([b, lq, heads * d]), k = rng.floats([b, lk, heads * d]), v = rng.floats([b, lk, heads * d])
        let out = BF16Attention.forward(q: q, k: k, v: v, heads: heads)
        let err = scaleRelative(out, Attention.forward(q: q, k: k, v: v, heads: heads))
        let exact = Attention.forward(q: double(rounded(q)), k: double(rounded(k)), v: double(rounded(v)), heads: heads)
        let roundingOnly = scaleRelative(double(out), exact)
        print("fused attention \(lq)×\(lk) vs Float32: \(err), vs Float64 on rounded operands: \(roundingOnly)")
        #expect(err <= 1e-2)
        #expect(roundingOnly <= 4e-3)

        // Backward: every product's operands rounded once more (P, dS), against Float32 on unrounded ones.
        let dOut = rng.floats(out.shape)
        let grads = [q.shape, k.shape, v.shape].map { Tensor<Float>(zeros: $0) }
        let refs = [q.shape, k.shape, v.shape].map { Tensor<Float>(zeros: $0) }
        BF16Attention.backward(dOut: dOut, q: q, k: k, v: v, heads: heads, dq: grads[0], dk: grads[1], dv: grads[2])
        Attention.backward(dOut: dOut, q: q, k: k, v: v, heads: heads, dq: refs[0], dk: refs[1], dv: refs[2])
        let errs = zip(grads, refs).map { scaleRelative($0, $1) }
        print("fused attention backward \(lq)×\(lk) vs Float32 (dq, dk, dv): \(errs)")
        #expect(errs.allSatisfy { $0 <= 2e-2 })
        // Only dv asked for (cross-attention with frozen keys): the same dv, nothing else touched.
        let onlyDV = Tensor<Float>(zeros: v.shape)
        BF16Attention.backward(dOut: dOut, q: q, k: k, v: v, heads: heads, dq: nil, dk: nil, dv: onlyDV)
        #expect((0..<onlyDV.count).allSatisfy { onlyDV.data[$0] == grads[2].data[$0] })
    }

    /// The bf16 adapter hook (stacked factors, bf16 products) against the Float32 hook: forward and every
    /// ortho gradient within bf16's bound (≤ 1e-2 of the scale, ≤ 2e-2 for gradients, as attention above);
    /// masked components (index ≥ active) stay untouched; low-rank factors take the same forward.
    @Test func adapterFollowsFloat32() {
        var rng = TestRandom(seed: 13)
        let (n, inF, outF, r, active) = (37, 96, 80, 8, 5)
        let x = rng.floats([2, n, inF]), dy = rng.floats([2, n, outF]), y0 = rng.floats([2, n, outF])
        let ortho = AdapterFactors<Float>.ortho(q: rng.floats([r, inF]), p: rng.floats([outF, r]), lambda: rng.floats([r]),
                                                q0: rng.floats([r, inF]), p0: rng.floats([outF, r]), lambda0: rng.floats([r]))
        let lowRank = AdapterFactors<Float>.lowRank(down: rng.floats([r, inF]), up: rng.floats([outF, r]), scale: 0.75)
        for factors in [ortho, lowRank] {
            let y = y0.clone(), reference = y0.clone()
            BF16Adapter.forward(x: x, factors: factors, active: active, y: y)
            LowRankAdapter.forward(x: x, factors: factors, active: active, y: reference)
            let (effect, referenceEffect) = (Tensor(shape: y.shape) { y[$0] - y0[$0] }, Tensor(shape: y.shape) { reference[$0] - y0[$0] })
            print("BF16Adapter forward vs Float32: \(scaleRelative(effect, referenceEffect))")
            #expect(scaleRelative(effect, referenceEffect) <= 1e-2)
        }
        func gradients(_ backward: (Tensor<Float>, Tensor<Float>, Tensor<Float>, Tensor<Float>) -> Void) -> [Tensor<Float>] {
            let g = [Tensor<Float>(zeros: [r, inF]), Tensor<Float>(zeros: [outF, r]), Tensor<Float>(zeros: [r]), Tensor<Float>(zeros: x.shape)]
            backward(g[0], g[1], g[2], g[3])
            return g
        }
        let bf16 = gradients { dQ, dP, dL, dx in
            BF16Adapter.backward(dy: dy, x: x, factors: ortho, active: active, dx: dx, gradients: .ortho(q: dQ, p: dP, lambda: dL))
        }
        let reference = gradients { dQ, dP, dL, dx in
            LowRankAdapter.backward(dy: dy, x: x, factors: ortho, active: active, dx: dx, gradients: .ortho(q: dQ, p: dP, lambda: dL))
        }
        let errors = zip(bf16, reference).map { scaleRelative($0, $1) }
        print("BF16Adapter backward vs Float32 (dQ, dP, dλ, dx): \(errors)")
        #expect(errors.allSatisfy { $0 <= 2e-2 })
        #expect((active * inF..<r * inF).allSatisfy { bf16[0][$0] == 0 }, "masked rows of dQ untouched")
        #expect((0..<outF).allSatisfy { o in (active..<r).allSatisfy { bf16[1][o * r + $0] == 0 } }, "masked columns of dP untouched")
        #expect((active..<r).allSatisfy { bf16[2][$0] == 0 })
    }

    // MARK: Helpers

    func double(_ t: Tensor<Float>) -> Tensor<Double> { Tensor(shape: t.shape) { Double(t[$0]) } }

    func rounded(_ t: Tensor<Float>) -> Tensor<Float> { Tensor(shape: t.shape) { BFloat16.rounded(t[$0]) } }
}

extension TestRandom {
    mutating func floats(_ shape: [Int]) -> Tensor<Float> { tensor(shape).converted(to: Float.self) }
}

