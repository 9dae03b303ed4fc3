import CDNNL
import Foundation

/// Batched C[i] = alpha · A[i] · B[i] (+ C[i] when `accumulate`) for i < batch: A [m, k] and B [k, n] bf16,
/// C [m, n] Float32, each given by its strides (batch, row, column) so transposes and head slices are
/// views, on oneDNN's bf16 matmul. Attention's per-head products run as one call per block of query rows.
/// Primitives are kept per shape, strides and flags (a UNet has a handful), shared by all callers.
enum BF16Matmul {
    /// Element strides of a batched matrix: between batch items, rows, columns.
    struct Strides: Hashable {
        let batch, row, column: Int
        init(_ batch: Int, _ row: Int, _ column: Int) { (self.batch, self.row, self.column) = (batch, row, column) }
        var array: [Int] { [batch, row, column] }
    }

    struct Shape: Hashable {
        let batch, m, n, k: Int
        let a, b, c: Strides
        let accumulate: Bool
        let alphaBits: UInt32
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var plans: [Shape: OneDNNPrimitive] = [:]

    static func run(
        batch: Int, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeRawPointer, _ aStrides: Strides, b: UnsafeRawPointer, _ bStrides: Strides,
        c: UnsafeMutablePointer<Float>, _ cStrides: Strides, accumulate: Bool = false
    ) {
        let shape = Shape(batch: batch, m: m, n: n, k: k, a: aStrides, b: bStrides, c: cStrides,
                          accumulate: accumulate, alphaBits: alpha.bitPattern)
        let plan = lock.withLock { plans[shape] } ?? make(shape, alpha: alpha)
        plan.run([
            (OneDNN.src, plan.layout(dnnl_query_src_md), UnsafeMutableRawPointer(mutating: a)),
            (OneDNN.weights, plan.layout(dnnl_query_weights_md), UnsafeMutableRawPointer(mutating: b)),
            (OneDNN.dst, plan.layout(dnnl_query_dst_md), UnsafeMutableRawPointer(c)),
        ])
    }

    private static func make(_ s: Shape, alpha: Float) -> OneDNNPrimitive {
        var src = OneDNN.descriptor([s.batch, s.m, s.k], dnnl_bf16, strides: s.a.array)
        var wei = OneDNN.descriptor([s.batch, s.k, s.n], dnnl_bf16, strides: s.b.array)
        var dst = OneDNN.descriptor([s.batch, s.m, s.n], dnnl_f32, strides: s.c.array)
        let attr = s.accumulate ? OneDNN.accumulating() : OneDNN.attributes()
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
