import CDNNL
import Foundation

/// C [m, n] (Float32) = alpha · op(A) · op(B) (+ C when `accumulate`), A and B bf16 matrices given by row
/// stride like BLAS (op = transpose when asked), on oneDNN's bf16 matmul. For the per-head products of
/// attention, whose operands are column slices of [L, H·D] tensors: strided views, nothing is copied.
/// Primitives are kept per shape, stride and flags (a UNet has a handful), shared by all callers.
enum BF16Matmul {
    struct Shape: Hashable {
        let m, n, k, lda, ldb, ldc: Int
        let transA, transB, accumulate: Bool
        let alphaBits: UInt32
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var plans: [Shape: OneDNNPrimitive] = [:]

    static func run(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeRawPointer, lda: Int, b: UnsafeRawPointer, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false
    ) {
        let shape = Shape(m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, transA: transA, transB: transB,
                          accumulate: accumulate, alphaBits: alpha.bitPattern)
        let plan = lock.withLock { plans[shape] } ?? make(shape, alpha: alpha)
        plan.run([
            (OneDNN.src, plan.layout(dnnl_query_src_md), UnsafeMutableRawPointer(mutating: a)),
            (OneDNN.weights, plan.layout(dnnl_query_weights_md), UnsafeMutableRawPointer(mutating: b)),
            (OneDNN.dst, plan.layout(dnnl_query_dst_md), UnsafeMutableRawPointer(c)),
        ])
    }

    private static func make(_ s: Shape, alpha: Float) -> OneDNNPrimitive {
        // op(A) [m, k]: stored [m, k] (strides lda, 1) or [k, m] (strides 1, lda); likewise op(B) [k, n].
        var src = OneDNN.descriptor([s.m, s.k], dnnl_bf16, strides: s.transA ? [1, s.lda] : [s.lda, 1])
        var wei = OneDNN.descriptor([s.k, s.n], dnnl_bf16, strides: s.transB ? [1, s.ldb] : [s.ldb, 1])
        var dst = OneDNN.descriptor([s.m, s.n], dnnl_f32, strides: [s.ldc, 1])
        let attr = s.accumulate ? OneDNN.accumulating() : {
            var attr: dnnl_primitive_attr_t?
            OneDNN.check(dnnl_primitive_attr_create(&attr), "creating attributes")
            return attr!
        }()
        defer { dnnl_primitive_attr_destroy(attr) }
        if alpha != 1 {
            var scale = alpha
            OneDNN.check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "setting the output scale")
        }
        guard let p = OneDNNPrimitive({ pd in
            var desc = dnnl_matmul_desc_t()
            let status = dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst)
            guard status == dnnl_success else { return status }
            return dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil)
        }) else { preconditionFailure("oneDNN has no bf16 matmul for \(s)") }
        lock.withLock { plans[s] = p }
        return p
    }
}
