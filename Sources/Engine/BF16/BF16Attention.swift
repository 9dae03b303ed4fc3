/// `Attention` (no causal mask) with bf16 products. Where the processor has AVX-512 BF16 and heads are
/// 64 wide, `FusedAttention` computes it in one pass per head; otherwise the products — scores Q·Kᵀ and
/// mixes P·V (and in backward Pᵀ·dO, dO·Vᵀ, dS·K, dSᵀ·Q) — run on oneDNN's bf16 matmul with Float32
/// accumulation, softmax and its backward in Float32: what PyTorch's attention does under bf16 autocast.
///
/// q, k, v (and dOut) are rounded once per call into head-major bf16 copies [B, H, L, D], where each head
/// is a dense matrix: oneDNN's brgemm kernels take those at about twice the rate of column slices of
/// [L, H·D]. Each block of query rows runs all heads in one batched product, and the block is sized so
/// the scores of all heads fit in `Attention.blockBudget` elements: the [Lq, Lk] matrix of a head never
/// exists whole.
public enum BF16Attention {
    public static func forward(q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, heads: Int, out: Tensor<Float>) {
        let g = AttentionGeometry(q: q, k: k, v: v, heads: heads, causal: false)
        expectShape(out, q.shape, "BF16Attention out")
        let profiled = ProfiledOperation("attention.forward bf16", flops: 4 * g.batch * g.lq * g.lk * g.width)
        defer { profiled.end() }
        if FusedAttention.applies(g) { return FusedAttention.forward(q: q, k: k, v: v, out: out, g) }
        let (h, d, lq, lk, rows) = (g.heads, g.d, g.lq, g.lk, blockRows(g))
        let scale = 1 / Float(d).squareRoot()
        withHeadMajor([q, k, v], g) { r in
            let (qh, kh, vh) = (r[0], r[1], r[2])
            Scratch.with(h * rows * (lk + d), of: Float.self) { s in
                let o = s + h * rows * lk
                Scratch.withBytes(2 * h * rows * lk) { raw in
                    let pb = raw.assumingMemoryBound(to: UInt16.self)
                    forEachBlock(g, rows) { b, q0, nq in
                        let qb = qh + (b * h * lq + q0) * d, kb = kh + b * h * lk * d, vb = vh + b * h * lk * d
                        BF16Matmul.run(batch: h, m: nq, n: lk, k: d, alpha: scale, a: qb, .init(lq * d, d, 1),
                                       b: kb, .init(lk * d, 1, d), c: s, .init(nq * lk, lk, 1))
                        g.softmaxRows(s, q0: 0, nq: h * nq, serial: false)
                        BFloat16.convert(s, to: pb, count: h * nq * lk)
                        BF16Matmul.run(batch: h, m: nq, n: d, k: lk, a: pb, .init(nq * lk, lk, 1),
                                       b: vb, .init(lk * d, d, 1), c: o, .init(nq * d, d, 1))
                        fromHeadMajor(o, rows: nq, rowCount: nq, g, into: out.data + (b * lq + q0) * g.width, add: false)
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
        if FusedAttention.applies(g) {
            return FusedAttention.backward(dOut: dOut, q: q, k: k, v: v, dq: dq, dk: dk, dv: dv, g)
        }
        let (h, d, lq, lk, rows) = (g.heads, g.d, g.lq, g.lk, blockRows(g))
        let scale = 1 / Float(d).squareRoot()
        withHeadMajor([q, k, v, dOut], g) { r in
            let (qh, kh, vh, oh) = (r[0], r[1], r[2], r[3])
            // Scores and their gradient per block, dq of a block, and dk, dv of the whole batch item.
            Scratch.with(2 * h * rows * lk + h * rows * d + 2 * h * lk * d, of: Float.self) { p in
                let dp = p + h * rows * lk, dqBlock = dp + h * rows * lk, dkh = dqBlock + h * rows * d, dvh = dkh + h * lk * d
                Scratch.withBytes(2 * h * rows * lk) { raw in
                    let pb = raw.assumingMemoryBound(to: UInt16.self)
                    for b in 0..<g.batch {
                        dkh.update(repeating: 0, count: 2 * h * lk * d)
                        forEachBlock(g, rows, batch: b) { b, q0, nq in
                            let qb = qh + (b * h * lq + q0) * d, ob = oh + (b * h * lq + q0) * d
                            let kb = kh + b * h * lk * d, vb = vh + b * h * lk * d
                            BF16Matmul.run(batch: h, m: nq, n: lk, k: d, alpha: scale, a: qb, .init(lq * d, d, 1),
                                           b: kb, .init(lk * d, 1, d), c: p, .init(nq * lk, lk, 1))
                            g.softmaxRows(p, q0: 0, nq: h * nq, serial: false)
                            if dv != nil {
                                BFloat16.convert(p, to: pb, count: h * nq * lk)
                                BF16Matmul.run(batch: h, m: lk, n: d, k: nq, a: pb, .init(nq * lk, 1, lk),
                                               b: ob, .init(lq * d, d, 1), c: dvh, .init(lk * d, d, 1), accumulate: true)
                            }
                            guard dq != nil || dk != nil else { return }
                            BF16Matmul.run(batch: h, m: nq, n: lk, k: d, a: ob, .init(lq * d, d, 1),
                                           b: vb, .init(lk * d, 1, d), c: dp, .init(nq * lk, lk, 1))
                            g.softmaxBackwardRows(p: p, dp: dp, nq: h * nq, scale: scale, serial: false)
                            BFloat16.convert(dp, to: pb, count: h * nq * lk)  // dS
                            if let dq {
                                BF16Matmul.run(batch: h, m: nq, n: d, k: lk, a: pb, .init(nq * lk, lk, 1),
                                               b: kb, .init(lk * d, d, 1), c: dqBlock, .init(nq * d, d, 1))
                                fromHeadMajor(dqBlock, rows: nq, rowCount: nq, g, into: dq.data + (b * lq + q0) * g.width, add: true)
                            }
                            if dk != nil {
                                BF16Matmul.run(batch: h, m: lk, n: d, k: nq, a: pb, .init(nq * lk, 1, lk),
                                               b: qb, .init(lq * d, d, 1), c: dkh, .init(lk * d, d, 1), accumulate: true)
                            }
                        }
                        if let dk { fromHeadMajor(dkh, rows: lk, rowCount: lk, g, into: dk.data + b * lk * g.width, add: true) }
                        if let dv { fromHeadMajor(dvh, rows: lk, rowCount: lk, g, into: dv.data + b * lk * g.width, add: true) }
                    }
                }
            }
        }
    }

    /// Query rows per block: the scores of all heads for a block fit in `Attention.blockBudget` elements.
    static func blockRows(_ g: AttentionGeometry) -> Int {
        max(1, min(g.lq, Attention.blockBudget / max(1, g.heads * g.lk)))
    }

    /// body(b, q0, nq) for every batch item (or just `batch`) and block of query rows, in order.
    private static func forEachBlock(_ g: AttentionGeometry, _ rows: Int, batch: Int? = nil, _ body: (Int, Int, Int) -> Void) {
        for b in batch.map({ $0..<($0 + 1) }) ?? 0..<g.batch {
            var q0 = 0
            while q0 < g.lq {
                body(b, q0, min(rows, g.lq - q0))
                q0 += rows
            }
        }
    }

    /// Runs `body` with head-major bf16 copies [B, H, L, D] of tensors [B, L, H·D] (one scratch buffer).
    private static func withHeadMajor<R>(_ tensors: [Tensor<Float>], _ g: AttentionGeometry,
                                         _ body: ([UnsafeMutablePointer<UInt16>]) -> R) -> R {
        Scratch.withBytes(2 * tensors.reduce(0) { $0 + $1.count }) { raw in
            var pointers: [UnsafeMutablePointer<UInt16>] = [], next = raw.assumingMemoryBound(to: UInt16.self)
            for t in tensors {
                let (batch, len, heads, d, width) = (t.shape[0], t.shape[1], g.heads, g.d, g.width)
                let src = t.data, dst = next
                Parallel.forEach(batch * len, grain: max(1, 8192 / width)) { items in
                    for item in items {
                        let b = item / len, l = item % len
                        for h in 0..<heads {
                            let from = src + item * width + h * d, to = dst + ((b * heads + h) * len + l) * d
                            for j in 0..<d { to[j] = BFloat16.bits(from[j]) }
                        }
                    }
                }
                pointers.append(next)
                next += t.count
            }
            return body(pointers)
        }
    }

    /// Head-major Float32 rows [H, rows, D] (first `rowCount` rows of each head) into (or added to) rows of a
    /// [L, H·D] tensor starting at `into`.
    private static func fromHeadMajor(_ src: UnsafeMutablePointer<Float>, rows: Int, rowCount: Int, _ g: AttentionGeometry,
                                      into dst: UnsafeMutablePointer<Float>, add: Bool) {
        let (heads, d, width) = (g.heads, g.d, g.width)
        Parallel.forEach(rowCount, grain: max(1, 8192 / width)) { rs in
            for r in rs {
                for h in 0..<heads {
                    let from = src + (h * rows + r) * d, to = dst + r * width + h * d
                    if add { for j in 0..<d { to[j] += from[j] } } else { to.update(from: from, count: d) }
                }
            }
        }
    }
}
