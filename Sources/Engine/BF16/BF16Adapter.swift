/// `LowRankAdapter`'s hook for a bf16 Linear: the same arithmetic with bf16 products and Float32
/// accumulation, as PyTorch's autocast runs a LoRA beside a bf16 Linear. The thin products of rank 64
/// reached only 110–140 GFLOP/s in Float32; here the trainable and frozen factors are stacked into one
/// product of twice the rank, y += ((x · [q; q0]ᵀ) ⊙ [λ; −λ0]) · [p, p0]ᵀ (low-rank: down, scale, up), so a
/// hook is two bf16 products in the forward and five in the ortho backward instead of four and seven.
/// The factors change every training step (a few hundred kB each), so they are stacked and rounded once
/// per forward (`Stacked`), and a training layer hands the same stack to its backward.
public enum BF16Adapter {
    /// The active components of both copies, rounded: down [k, in], up [out, k], and Float32 column scales [k].
    public struct Stacked {
        let k: Int
        let down: [UInt16], up: [UInt16], scales: [Float]

        /// Stacks the first `a` components of the factors of a Linear [outF, inF].
        public init(_ f: AdapterFactors<Float>, active a: Int, inF: Int, outF: Int) {
            precondition(f.inFeatures == inF && f.outFeatures == outF && a >= 0 && a <= f.rank,
                         "adapter factors [\(f.outFeatures), \(f.inFeatures)] rank \(f.rank) for a Linear [\(outF), \(inF)], \(a) active")
            let copies: [(down: Tensor<Float>, up: Tensor<Float>, scales: [Float])]
            switch f {
            case let .lowRank(down, up, scale): copies = [(down, up, [Float](repeating: scale, count: a))]
            case let .ortho(q, p, lambda, q0, p0, lambda0):
                copies = [(q, p, Array(lambda.array.prefix(a))), (q0, p0, lambda0.array.prefix(a).map { -$0 })]
            }
            let r = f.rank, k = copies.count * a
            var down = [UInt16](repeating: 0, count: k * inF), up = [UInt16](repeating: 0, count: outF * k)
            down.withUnsafeMutableBufferPointer { d in
                up.withUnsafeMutableBufferPointer { u in
                    for (c, copy) in copies.enumerated() {
                        // Rows of down are contiguous in both; each row of up takes a columns of the copy's [out, R].
                        BFloat16.convert(copy.down.data, to: d.baseAddress! + c * a * inF, count: a * inF)
                        BFloat16.convert(copy.up.data, rows: outF, cols: a, ld: r, to: u.baseAddress! + c * a, dstLd: k)
                    }
                }
            }
            (self.k, self.down, self.up, self.scales) = (k, down, up, copies.flatMap(\.scales))
        }
    }

    /// y [N, out] += ΔW(m) · x for x [N, in].
    public static func forward(x: Tensor<Float>, factors: AdapterFactors<Float>, active: Int, y: Tensor<Float>) {
        let (_, inF, outF, _) = LowRankAdapter.dims(x, factors, active)
        let s = Stacked(factors, active: active, inF: inF, outF: outF)
        BFloat16.withRounded(x) { forward(x: $0, factors: factors, stacked: s, active: active, y: y) }
    }

    /// The same on activations already rounded and factors already stacked (a bf16 Linear's hook).
    public static func forward(x: BF16Rounded, factors: AdapterFactors<Float>, stacked s: Stacked, active: Int, y: Tensor<Float>) {
        let inF = factors.inFeatures, outF = factors.outFeatures, n = x.count / max(inF, 1)
        precondition(s.k == factors.copies * active, "adapter: factors stacked for another mask")
        precondition(x.shape.last == inF, "adapter x \(x.shape) for in \(inF)")
        expectShape(y, x.shape.dropLast() + [outF], "adapter y")
        let profiled = ProfiledOperation("adapter.forward bf16", flops: factors.copies * 2 * n * active * (inF + outF))
        defer { profiled.end() }
        if active == 0 { return }
        let k = s.k, xb = x.pointer
        Scratch.with(n * k, of: Float.self) { h in
            s.down.withUnsafeBufferPointer { down in
                BF16Matmul.run(batch: 1, m: n, n: k, k: inF, a: xb, .init(n * inF, inF, 1),
                               b: down.baseAddress!, .init(k * inF, 1, inF), c: h, .init(n * k, k, 1))
            }
            scaleColumns(h, rows: n, s.scales)
            BFloat16.withRounded(h, count: n * k) { hb in
                s.up.withUnsafeBufferPointer { up in
                    BF16Matmul.run(batch: 1, m: n, n: outF, k: k, a: hb, .init(n * k, k, 1),
                                   b: up.baseAddress!, .init(outF * k, 1, k), c: y.data, .init(n * outF, outF, 1), accumulate: true)
                }
            }
        }
    }

    /// Accumulates the gradients as `LowRankAdapter.backward` does. Ortho factors (what training runs) take
    /// the bf16 products; low-rank ones go to the Float32 hook.
    public static func backward(dy: Tensor<Float>, x: Tensor<Float>, factors: AdapterFactors<Float>, active a: Int,
                                dx: Tensor<Float>?, gradients: AdapterGradients<Float>) {
        guard case .ortho = factors, case .ortho = gradients else {
            return LowRankAdapter.backward(dy: dy, x: x, factors: factors, active: a, dx: dx, gradients: gradients)
        }
        let (_, inF, outF, _) = LowRankAdapter.dims(x, factors, a)
        let s = Stacked(factors, active: a, inF: inF, outF: outF)
        BFloat16.withRounded(dy) { backward(dy: $0, x: x, factors: factors, stacked: s, active: a, dx: dx, gradients: gradients) }
    }

    /// The same on an output gradient already rounded (shared with the Linear's backward) and the factors
    /// stacked by the forward.
    public static func backward(dy dyRounded: BF16Rounded, x: Tensor<Float>, factors: AdapterFactors<Float>, stacked s: Stacked,
                                active a: Int, dx: Tensor<Float>?, gradients: AdapterGradients<Float>) {
        guard case let .ortho(_, _, lambda, _, _, _) = factors, case let .ortho(dQ, dP, dLambda) = gradients else {
            preconditionFailure("BF16Adapter: the stacked backward takes T-LoRA factors and gradients")
        }
        let (n, inF, outF, r) = LowRankAdapter.dims(x, factors, a)
        precondition(dyRounded.shape == x.shape.dropLast() + [outF], "adapter dy \(dyRounded.shape)")
        if let dx { expectShape(dx, x.shape, "adapter dx") }
        if let dQ { expectShape(dQ, [r, inF], "adapter dQ") }
        if let dP { expectShape(dP, [outF, r], "adapter dP") }
        if let dLambda { expectShape(dLambda, [r], "adapter dLambda") }
        let profiled = ProfiledOperation("adapter.backward bf16", flops: 2 * n * a * (3 * outF + 4 * inF))
        defer { profiled.end() }
        if a == 0 { return }
        let k = s.k, dyb = dyRounded.pointer
        BFloat16.withRounded(x.data, count: n * inF) { xb in
        Scratch.with(n * k + n * a + a * outF, of: Float.self) { work in
            let g = work, u = work + n * k, dPt = u + n * a
            s.down.withUnsafeBufferPointer { down in
            s.up.withUnsafeBufferPointer { up in
                // g = dy · [p, p0] [N, 2a]; u = x · q[:a]ᵀ [N, a]
                BF16Matmul.run(batch: 1, m: n, n: k, k: outF, a: dyb, .init(n * outF, outF, 1),
                               b: up.baseAddress!, .init(outF * k, k, 1), c: g, .init(n * k, k, 1))
                if dP != nil || dLambda != nil {
                    BF16Matmul.run(batch: 1, m: n, n: a, k: inF, a: xb, .init(n * inF, inF, 1),
                                   b: down.baseAddress!, .init(a * inF, 1, inF), c: u, .init(n * a, a, 1))
                }
                if let dLambda {
                    for j in 0..<a {
                        var sum: Float = 0
                        for i in 0..<n { sum += g[i * k + j] * u[i * a + j] }
                        dLambda.data[j] += sum
                    }
                }
                if let dP {
                    // dP[:, :a] += dyᵀ · (u ⊙ λ), made as its transpose [a, out] and added column by column.
                    scaleColumns(u, rows: n, (0..<a).map { lambda[$0] })
                    BFloat16.withRounded(u, count: n * a) { ub in
                        BF16Matmul.run(batch: 1, m: a, n: outF, k: n, a: ub, .init(n * a, 1, a),
                                       b: dyb, .init(n * outF, outF, 1), c: dPt, .init(a * outF, outF, 1))
                    }
                    for o in 0..<outF { for j in 0..<a { dP.data[o * r + j] += dPt[j * outF + o] } }
                }
                // [g ⊙ λ, −g0 ⊙ λ0]: dQ[:a] += (g ⊙ λ)ᵀ · x; dx += [g ⊙ λ, −g0 ⊙ λ0] · [q; q0]
                scaleColumns(g, rows: n, s.scales)
                BFloat16.withRounded(g, count: n * k) { gb in
                    if let dQ {
                        BF16Matmul.run(batch: 1, m: a, n: inF, k: n, a: gb, .init(n * k, 1, k),
                                       b: xb, .init(n * inF, inF, 1), c: dQ.data, .init(a * inF, inF, 1), accumulate: true)
                    }
                    if let dx {
                        BF16Matmul.run(batch: 1, m: n, n: inF, k: k, a: gb, .init(n * k, k, 1),
                                       b: down.baseAddress!, .init(k * inF, inF, 1), c: dx.data, .init(n * inF, inF, 1), accumulate: true)
                    }
                }
            }
            }
        }
        }
    }

    /// h[i, j] *= s[j] for h [rows, s.count].
    private static func scaleColumns(_ h: UnsafeMutablePointer<Float>, rows: Int, _ s: [Float]) {
        let k = s.count
        Parallel.forEach(rows, grain: max(1, 4096 / k)) { rs in
            for i in rs { for j in 0..<k { h[i * k + j] *= s[j] } }
        }
    }
}
