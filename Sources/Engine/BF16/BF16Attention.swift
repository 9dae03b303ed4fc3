/// `Attention` (no causal mask) with bf16 products: scores Q·Kᵀ and the mixes P·V (and in backward
/// Pᵀ·dO, dO·Vᵀ, dS·K, dSᵀ·Q) on oneDNN's bf16 matmul with Float32 accumulation, softmax and its backward
/// in Float32 — what PyTorch's attention does under bf16 autocast. Same blocking as the Float32 path: one
/// block of query rows at a time against all keys, so the score matrix of a head never exists whole.
/// q, k, v and dOut are rounded to bf16 once per call; blocks run one after another, each product on all
/// threads (oneDNN's), because per-head products are too thin to split further.
public enum BF16Attention {
    public static func forward(q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, heads: Int, out: Tensor<Float>) {
        let g = AttentionGeometry(q: q, k: k, v: v, heads: heads, causal: false)
        expectShape(out, q.shape, "BF16Attention out")
        let profiled = ProfiledOperation("attention.forward bf16", flops: 4 * g.batch * g.lq * g.lk * g.width)
        defer { profiled.end() }
        let scale = 1 / Float(g.d).squareRoot()
        withRounded([q, k, v]) { r in
            let (qb, kb, vb) = (r[0], r[1], r[2])
            Scratch.with(g.block * g.lk, of: Float.self) { s in
                Scratch.withBytes(2 * g.block * g.lk) { raw in
                    let pb = raw.assumingMemoryBound(to: UInt16.self)
                    g.forEachBlockInOrder { b, h, q0, nq in
                        BF16Matmul.run(transB: true, m: nq, n: g.lk, k: g.d, alpha: scale,
                                       a: qb + g.row(b, q0, h, g.lq), lda: g.width, b: kb + g.row(b, 0, h, g.lk), ldb: g.width,
                                       c: s, ldc: g.lk)
                        g.softmaxRows(s, q0: q0, nq: nq, serial: false)
                        BFloat16.convert(s, to: pb, count: nq * g.lk)
                        BF16Matmul.run(m: nq, n: g.d, k: g.lk, a: pb, lda: g.lk, b: vb + g.row(b, 0, h, g.lk), ldb: g.width,
                                       c: out.data + g.row(b, q0, h, g.lq), ldc: g.width)
                    }
                }
            }
        }
    }

    /// Allocating convenience: returns out [B, Lq, H·D].
    public static func forward(q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, heads: Int) -> Tensor<Float> {
        let out = Tensor<Float>(zeros: q.shape)
        forward(q: q, k: k, v: v, heads: heads, out: out)
        return out
    }

    /// Accumulates dq, dk, dv (each optional) as `Attention.backward` does, P recomputed per block.
    public static func backward(
        dOut: Tensor<Float>, q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, heads: Int,
        dq: Tensor<Float>?, dk: Tensor<Float>?, dv: Tensor<Float>?
    ) {
        let g = AttentionGeometry(q: q, k: k, v: v, heads: heads, causal: false)
        expectShape(dOut, q.shape, "BF16Attention dOut")
        if let dq { expectShape(dq, q.shape, "BF16Attention dq") }
        if let dk { expectShape(dk, k.shape, "BF16Attention dk") }
        if let dv { expectShape(dv, v.shape, "BF16Attention dv") }
        let products = 1 + (dv == nil ? 0 : 1) + (dq == nil && dk == nil ? 0 : 1) + (dq == nil ? 0 : 1) + (dk == nil ? 0 : 1)
        let profiled = ProfiledOperation("attention.backward bf16", flops: 2 * g.batch * g.lq * g.lk * g.width * products)
        defer { profiled.end() }
        let scale = 1 / Float(g.d).squareRoot()
        withRounded([q, k, v, dOut]) { r in
            let (qb, kb, vb, ob) = (r[0], r[1], r[2], r[3])
            Scratch.with(2 * g.block * g.lk, of: Float.self) { p in
                let dp = p + g.block * g.lk
                Scratch.withBytes(2 * g.block * g.lk) { raw in
                    let pb = raw.assumingMemoryBound(to: UInt16.self)
                    g.forEachBlockInOrder { b, h, q0, nq in
                        BF16Matmul.run(transB: true, m: nq, n: g.lk, k: g.d, alpha: scale,
                                       a: qb + g.row(b, q0, h, g.lq), lda: g.width, b: kb + g.row(b, 0, h, g.lk), ldb: g.width,
                                       c: p, ldc: g.lk)
                        g.softmaxRows(p, q0: q0, nq: nq, serial: false)
                        let dO = ob + g.row(b, q0, h, g.lq)
                        if let dv {
                            BFloat16.convert(p, to: pb, count: nq * g.lk)
                            BF16Matmul.run(transA: true, m: g.lk, n: g.d, k: nq, a: pb, lda: g.lk, b: dO, ldb: g.width,
                                           c: dv.data + g.row(b, 0, h, g.lk), ldc: g.width, accumulate: true)
                        }
                        guard dq != nil || dk != nil else { return }
                        BF16Matmul.run(transB: true, m: nq, n: g.lk, k: g.d, a: dO, lda: g.width,
                                       b: vb + g.row(b, 0, h, g.lk), ldb: g.width, c: dp, ldc: g.lk)
                        g.softmaxBackwardRows(p: p, dp: dp, nq: nq, scale: scale, serial: false)
                        BFloat16.convert(dp, to: pb, count: nq * g.lk)  // dS
                        if let dq {
                            BF16Matmul.run(m: nq, n: g.d, k: g.lk, a: pb, lda: g.lk, b: kb + g.row(b, 0, h, g.lk), ldb: g.width,
                                           c: dq.data + g.row(b, q0, h, g.lq), ldc: g.width, accumulate: true)
                        }
                        if let dk {
                            BF16Matmul.run(transA: true, m: g.lk, n: g.d, k: nq, a: pb, lda: g.lk,
                                           b: qb + g.row(b, q0, h, g.lq), ldb: g.width,
                                           c: dk.data + g.row(b, 0, h, g.lk), ldc: g.width, accumulate: true)
                        }
                    }
                }
            }
        }
    }

    /// Runs `body` with bf16 copies of `tensors` (one scratch buffer, released after).
    private static func withRounded<R>(_ tensors: [Tensor<Float>], _ body: ([UnsafeMutablePointer<UInt16>]) -> R) -> R {
        Scratch.withBytes(2 * tensors.reduce(0) { $0 + $1.count }) { raw in
            var pointers: [UnsafeMutablePointer<UInt16>] = [], next = raw.assumingMemoryBound(to: UInt16.self)
            for t in tensors {
                BFloat16.convert(t.data, to: next, count: t.count)
                pointers.append(next)
                next += t.count
            }
            return body(pointers)
        }
    }
}

extension AttentionGeometry {
    /// body(b, h, q0, nq) for every head and block of query rows, one after another.
    func forEachBlockInOrder(_ body: (Int, Int, Int, Int) -> Void) {
        for b in 0..<batch {
            for h in 0..<heads {
                var q0 = 0
                while q0 < lq {
                    let nq = min(block, lq - q0)
                    body(b, h, q0, nq)
                    q0 += nq
                }
            }
        }
    }
}
