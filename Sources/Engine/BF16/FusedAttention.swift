import CAttention
import Foundation

/// Attention in one pass per head (Sources/CAttention): bf16 products on AVX-512 BF16, softmax in
/// Float32 block by block, so scores never leave the cache — two to three times the rate of separate
/// oneDNN products with a block's score matrix in memory between them. The forward runs an online
/// softmax over chunks of keys; the backward takes a block of query rows against all keys. Used by
/// `BF16Attention` where the processor has the instructions and the head width is a multiple of 64
/// (every SDXL attention); elsewhere the oneDNN products run.
public enum FusedAttention {
    public static let supported = tl_attention_bf16_supported() != 0
    /// `TLKIT_UNFUSED_ATTENTION` set to anything but empty or `0` selects the oneDNN products instead, so
    /// benchmarks can compare both in one sitting (`TLKIT_UNFUSED_ATTENTION=$m` with m empty keeps the kernel).
    static let enabled = supported && ["", "0"].contains(getenv("TLKIT_UNFUSED_ATTENTION").map { String(cString: $0) } ?? "")

    static func applies(_ g: AttentionGeometry) -> Bool { enabled && g.d % 64 == 0 && !g.causal }

    static func forward(q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>, out: Tensor<Float>, _ g: AttentionGeometry) {
        let (heads, d, lq, lk, width) = (g.heads, g.d, g.lq, g.lk, g.width)
        // Work items are (batch item, head, slice of query rows); slices keep both threads busy when
        // there are few heads.
        let slices = max(1, min(lq / 48, (4 * Parallel.threads + g.batch * heads - 1) / (g.batch * heads)))
        let scale = 1 / Float(d).squareRoot()
        let bytes = tl_attention_bf16_scratch(Int32(lk), Int32(d))
        let (qp, kp, vp, op) = (q.data, k.data, v.data, out.data)
        Parallel.forEach(g.batch * heads * slices) { items in
            Scratch.withBytes(bytes) { scratch in
                for item in items {
                    let b = item / (heads * slices), h = item / slices % heads, slice = item % slices
                    let qOffset = b * lq * width + h * d, kvOffset = b * lk * width + h * d
                    tl_attention_bf16_forward(
                        qp + qOffset, kp + kvOffset, vp + kvOffset, op + qOffset, Int32(lk), Int32(d),
                        width, width, Int32(lq * slice / slices), Int32(lq * (slice + 1) / slices), scale, scratch)
                }
            }
        }
    }

    /// Accumulates dq, dk, dv (each optional) as `Attention.backward` does; one work item per head.
    static func backward(dOut: Tensor<Float>, q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>,
                         dq: Tensor<Float>?, dk: Tensor<Float>?, dv: Tensor<Float>?, _ g: AttentionGeometry) {
        let (heads, d, lq, lk, width) = (g.heads, g.d, g.lq, g.lk, g.width)
        let scale = 1 / Float(d).squareRoot()
        let bytes = tl_attention_bf16_backward_scratch(Int32(lk), Int32(d))
        let (op, qp, kp, vp) = (dOut.data, q.data, k.data, v.data)
        let (dqp, dkp, dvp) = (dq?.data, dk?.data, dv?.data)
        Parallel.forEach(g.batch * heads) { items in
            Scratch.withBytes(bytes) { scratch in
                for item in items {
                    let b = item / heads, h = item % heads
                    let qOffset = b * lq * width + h * d, kvOffset = b * lk * width + h * d
                    tl_attention_bf16_backward(
                        op + qOffset, qp + qOffset, kp + kvOffset, vp + kvOffset,
                        dqp.map { $0 + qOffset }, dkp.map { $0 + kvOffset }, dvp.map { $0 + kvOffset },
                        Int32(lq), Int32(lk), Int32(d), width, width, scale, scratch)
                }
            }
        }
    }
}
