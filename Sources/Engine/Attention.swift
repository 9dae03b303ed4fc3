/// Multi-head scaled-dot-product attention.
///
/// Shapes: q [B, Lq, H·D], k, v [B, Lk, H·D], out [B, Lq, H·D]; head h uses
/// columns h·D..<(h+1)·D (diffusers' head split). Per head:
/// S = q_h · k_hᵀ / √D [Lq, Lk], P = softmax(S) over each row (max-subtracted),
/// out_h = P · v_h. `causal` masks S[i, j] for j > i (CLIP text encoders; Lq = Lk).
/// Nothing is saved: backward recomputes P block by block, so memory stays
/// O(block · Lk) even at 4096 tokens (a saved P would be 64 MB per head).
/// Backward (accumulating): dv_h += Pᵀ · dout_h; dP = dout_h · v_hᵀ;
/// dS = P ⊙ (dP − rowsum(dP ⊙ P)) / √D; dq_h += dS · k_h; dk_h += dSᵀ · q_h.
public enum Attention {
    /// Elements of the per-block score buffer (default 16 MB in Float).
    /// Set once at start-up (tests shrink it to exercise blocking).
    nonisolated(unsafe) public static var blockBudget = 4 << 20

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(
        q: Tensor<T>, k: Tensor<T>, v: Tensor<T>, heads: Int, causal: Bool = false, out: Tensor<T>
    ) {
        let g = AttentionGeometry(q: q, k: k, v: v, heads: heads, causal: causal)
        expectShape(out, q.shape, "Attention out")
        let profiled = ProfiledOperation("attention.forward", flops: 4 * g.batch * g.lq * g.lk * g.width)
        defer { profiled.end() }
        g.forEachBlock(scratch: g.block * g.lk, of: T.self) { b, h, q0, nq, s, serial in
            g.probabilities(q: q.data, k: k.data, b: b, h: h, q0: q0, nq: nq, into: s, serial: serial)
            T.gemm(
                transA: false, transB: false, m: nq, n: g.d, k: g.lk,
                alpha: 1, a: s, lda: g.lk, b: v.data + g.row(b, 0, h, g.lk), ldb: g.width,
                beta: 0, c: out.data + g.row(b, q0, h, g.lq), ldc: g.width)
        }
    }

    /// Allocating convenience: returns out [B, Lq, H·D].
    public static func forward<T: Scalar>(
        q: Tensor<T>, k: Tensor<T>, v: Tensor<T>, heads: Int, causal: Bool = false
    ) -> Tensor<T> {
        let out = Tensor<T>(zeros: q.shape)
        forward(q: q, k: k, v: v, heads: heads, causal: causal, out: out)
        return out
    }

    /// The attention probabilities P [B, H, Lq, Lk] (for tests and inspection).
    public static func probabilities<T: Scalar>(
        q: Tensor<T>, k: Tensor<T>, heads: Int, causal: Bool = false
    ) -> Tensor<T> {
        let g = AttentionGeometry(q: q, k: k, v: k, heads: heads, causal: causal)
        let p = Tensor<T>(zeros: [g.batch, heads, g.lq, g.lk])
        g.forEachBlock(scratch: 0, of: T.self) { b, h, q0, nq, _, serial in
            let dst = p.data + ((b * heads + h) * g.lq + q0) * g.lk
            g.probabilities(q: q.data, k: k.data, b: b, h: h, q0: q0, nq: nq, into: dst, serial: serial)
        }
        return p
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(
        dOut: Tensor<T>, q: Tensor<T>, k: Tensor<T>, v: Tensor<T>, heads: Int, causal: Bool = false,
        dq: Tensor<T>?, dk: Tensor<T>?, dv: Tensor<T>?
    ) {
        let g = AttentionGeometry(q: q, k: k, v: v, heads: heads, causal: causal)
        expectShape(dOut, q.shape, "Attention dOut")
        if let dq { expectShape(dq, q.shape, "Attention dq") }
        if let dk { expectShape(dk, k.shape, "Attention dk") }
        if let dv { expectShape(dv, v.shape, "Attention dv") }
        // Recomputed scores, dv, dP, dq, dk: one [Lq, Lk, D] product each per head.
        let products = 1 + (dv == nil ? 0 : 1) + (dq == nil && dk == nil ? 0 : 1) + (dq == nil ? 0 : 1) + (dk == nil ? 0 : 1)
        let profiled = ProfiledOperation("attention.backward", flops: 2 * g.batch * g.lq * g.lk * g.width * products)
        defer { profiled.end() }
        let scale = T(1) / T(Double(g.d).squareRoot())
        g.forEachBlock(scratch: 2 * g.block * g.lk, of: T.self) { b, h, q0, nq, p, serial in
            let dp = p + g.block * g.lk
            g.probabilities(q: q.data, k: k.data, b: b, h: h, q0: q0, nq: nq, into: p, serial: serial)
            let dO = dOut.data + g.row(b, q0, h, g.lq)
            if let dv {
                T.gemm(
                    transA: true, transB: false, m: g.lk, n: g.d, k: nq,
                    alpha: 1, a: p, lda: g.lk, b: dO, ldb: g.width,
                    beta: 1, c: dv.data + g.row(b, 0, h, g.lk), ldc: g.width)
            }
            guard dq != nil || dk != nil else { return }
            T.gemm(
                transA: false, transB: true, m: nq, n: g.lk, k: g.d,
                alpha: 1, a: dO, lda: g.width, b: v.data + g.row(b, 0, h, g.lk), ldb: g.width,
                beta: 0, c: dp, ldc: g.lk)
            g.softmaxBackwardRows(p: p, dp: dp, nq: nq, scale: scale, serial: serial)
            if let dq {
                T.gemm(
                    transA: false, transB: false, m: nq, n: g.d, k: g.lk,
                    alpha: 1, a: dp, lda: g.lk, b: k.data + g.row(b, 0, h, g.lk), ldb: g.width,
                    beta: 1, c: dq.data + g.row(b, q0, h, g.lq), ldc: g.width)
            }
            if let dk {
                T.gemm(
                    transA: true, transB: false, m: g.lk, n: g.d, k: nq,
                    alpha: 1, a: dp, lda: g.lk, b: q.data + g.row(b, q0, h, g.lq), ldb: g.width,
                    beta: 1, c: dk.data + g.row(b, 0, h, g.lk), ldc: g.width)
            }
        }
    }
}

/// Sizes of one attention call and the shared score computation.
struct AttentionGeometry {
    let batch, lq, lk, heads, d, width, block: Int
    let causal: Bool

    init<T>(q: Tensor<T>, k: Tensor<T>, v: Tensor<T>, heads: Int, causal: Bool) {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "Attention wants [B, L, H·D] tensors")
        precondition(k.shape == v.shape, "Attention: k \(k.shape) vs v \(v.shape)")
        precondition(q.shape[0] == k.shape[0] && q.shape[2] == k.shape[2], "Attention: q \(q.shape) vs k \(k.shape)")
        precondition(heads > 0 && q.shape[2] % heads == 0, "Attention: width \(q.shape[2]), \(heads) heads")
        precondition(!causal || q.shape[1] == k.shape[1], "Attention: causal mask needs Lq = Lk")
        precondition(k.shape[1] > 0, "Attention: no keys")
        batch = q.shape[0]; lq = q.shape[1]; lk = k.shape[1]
        self.heads = heads; width = q.shape[2]; d = width / heads
        self.causal = causal
        block = max(1, min(lq, Attention.blockBudget / max(lk, 1)))
    }

    /// Flat offset of row `l` of head `h` in batch `b` for a tensor of length `len`.
    @inline(__always)
    func row(_ b: Int, _ l: Int, _ h: Int, _ len: Int) -> Int { (b * len + l) * width + h * d }

    /// Calls body(b, h, q0, nq, scratch, serial) for every head and block of
    /// query rows, with `scratch` elements of work space. With several threads
    /// and enough heads, heads run concurrently, one per thread with BLAS
    /// single-threaded (`serial` is then true: the body must not parallelise
    /// its rows): thin per-head GEMMs (k or n = D = 64) scale poorly inside BLAS.
    func forEachBlock<T: Scalar>(
        scratch: Int, of: T.Type, _ body: (Int, Int, Int, Int, UnsafeMutablePointer<T>, Bool) -> Void
    ) {
        let items = batch * heads, threads = Parallel.threads
        let serial = threads > 1 && items >= threads
        func run(_ range: Range<Int>) {
            Scratch.with(scratch, of: T.self) { s in
                for item in range {
                    var q0 = 0
                    while q0 < lq {
                        let nq = min(block, lq - q0)
                        body(item / heads, item % heads, q0, nq, s, serial)
                        q0 += nq
                    }
                }
            }
        }
        if serial {
            Parallel.withSerialBLAS { Parallel.forEach(items) { run($0) } }
        } else {
            run(0..<items)
        }
    }

    /// Row loop: inline when the caller already runs one head per thread.
    @inline(__always)
    func rows(_ n: Int, serial: Bool, _ body: (Range<Int>) -> Void) {
        if serial { body(0..<n) } else { Parallel.forEach(n, grain: max(1, 4096 / lk), body) }
    }

    /// P rows q0..<q0+nq of head h: into [nq, lk].
    func probabilities<T: Scalar>(
        q: UnsafeMutablePointer<T>, k: UnsafeMutablePointer<T>, b: Int, h: Int, q0: Int, nq: Int,
        into s: UnsafeMutablePointer<T>, serial: Bool
    ) {
        let scale = T(1) / T(Double(d).squareRoot())
        T.gemm(
            transA: false, transB: true, m: nq, n: lk, k: d,
            alpha: scale, a: q + row(b, q0, h, lq), lda: width, b: k + row(b, 0, h, lk), ldb: width,
            beta: 0, c: s, ldc: lk)
        softmaxRows(s, q0: q0, nq: nq, serial: serial)
    }

    /// Scores [nq, lk] of query rows q0..<q0+nq → probabilities, in place (max-subtracted, Float32).
    func softmaxRows<T: Scalar>(_ s: UnsafeMutablePointer<T>, q0: Int, nq: Int, serial: Bool) {
        let lk = self.lk, causal = self.causal
        rows(nq, serial: serial) { rows in
            for r in rows {
                let sr = s + r * lk
                // Causal: keys after the query's own position get probability 0.
                let valid = causal ? min(lk, q0 + r + 1) : lk
                let mx = maxOf(sr, valid)
                for j in 0..<valid { sr[j] = T.fastExp(sr[j] - mx) }
                let inv = 1 / sumOf(sr, valid)
                for j in 0..<valid { sr[j] *= inv }
                for j in valid..<lk { sr[j] = 0 }
            }
        }
    }

    /// Softmax backward in place: dp ← P ⊙ (dP − Σ_j dP·P) · scale, for [nq, lk] blocks.
    func softmaxBackwardRows<T: Scalar>(p: UnsafeMutablePointer<T>, dp: UnsafeMutablePointer<T>, nq: Int, scale: T, serial: Bool) {
        let lk = self.lk
        rows(nq, serial: serial) { rows in
            for r in rows {
                let pr = p + r * lk, dr = dp + r * lk
                let dot = dotOf(dr, pr, lk)
                for j in 0..<lk { dr[j] = pr[j] * (dr[j] - dot) * scale }
            }
        }
    }
}
