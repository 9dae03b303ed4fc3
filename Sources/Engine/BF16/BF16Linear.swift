import CDNNL

/// A frozen Linear's weight [out, in] rounded to bf16 once (half the memory of Float32), for
/// y = x·Wᵀ + b and dx += dy·W on oneDNN's bf16 matmul: bf16 products, Float32 accumulation and output.
/// One row-major copy serves both: the forward reads it as Wᵀ through strides (1, in), which oneDNN's
/// brgemm kernels take at the speed of its own packed layout (measured), so no second copy is kept.
///
/// Activations arrive in Float32 and are rounded to bf16 into a scratch buffer per call, or arrive rounded
/// (`BF16Rounded`) when the caller shares one rounding with the layer's adapter hooks.
/// Primitives are built once per row count and kept; a layer serves one call at a time.
public final class BF16Linear: @unchecked Sendable {
    public let outFeatures, inFeatures: Int
    let weight: AlignedBuffer
    private var forwardPlans: [Int: OneDNNPrimitive] = [:]
    private var biasedPlans: [Int: OneDNNPrimitive] = [:]
    private var backwardPlans: [Int: OneDNNPrimitive] = [:]
    private var overwritingBackwardPlans: [Int: OneDNNPrimitive] = [:]

    public init(weight w: Tensor<Float>) {
        precondition(w.rank == 2, "BF16Linear wants a weight [out, in]")
        (outFeatures, inFeatures) = (w.shape[0], w.shape[1])
        weight = AlignedBuffer(bytes: 2 * w.count)
        BFloat16.convert(w.data, to: weight.pointer.assumingMemoryBound(to: UInt16.self), count: w.count)
    }

    /// Bytes of the packed weight.
    public var bytes: Int { weight.bytes }

    /// y [N…, out] = x [N…, in] · Wᵀ + bias (y is overwritten).
    public func forward(x: Tensor<Float>, bias: Tensor<Float>?, y: Tensor<Float>) {
        BFloat16.withRounded(x) { forward(x: $0, bias: bias, y: y) }
    }

    /// The same on activations already rounded (shared with the adapter hooks of the layer).
    public func forward(x: BF16Rounded, bias: Tensor<Float>?, y: Tensor<Float>) {
        precondition(x.shape.last == inFeatures && x.count % inFeatures == 0, "BF16Linear: x \(x.shape) for in \(inFeatures)")
        let n = x.count / inFeatures
        precondition(y.count == n * outFeatures, "BF16Linear: y \(y.shape) for \(n) × \(outFeatures)")
        if let bias { precondition(bias.count == outFeatures, "BF16Linear: bias \(bias.shape)") }
        let profiled = ProfiledOperation("linear.forward bf16", flops: 2 * n * inFeatures * outFeatures)
        defer { profiled.end() }
        let plan = bias == nil ? cached(&forwardPlans, n) { forwardPlan(n, bias: false) }
                               : cached(&biasedPlans, n) { forwardPlan(n, bias: true) }
        var args: [(slot: Int32, layout: dnnl_memory_desc_t, pointer: UnsafeMutableRawPointer)] = [
            (OneDNN.src, plan.layout(dnnl_query_src_md), UnsafeMutableRawPointer(x.pointer)),
            (OneDNN.weights, plan.layout(dnnl_query_weights_md), weight.pointer),
            (OneDNN.dst, plan.layout(dnnl_query_dst_md), UnsafeMutableRawPointer(y.data)),
        ]
        if let bias { args.append((OneDNN.bias, OneDNN.descriptor([1, outFeatures], dnnl_f32, dnnl_ab), UnsafeMutableRawPointer(bias.data))) }
        plan.run(args)
    }

    /// Allocating convenience: returns y [N…, out].
    public func forward(x: Tensor<Float>, bias: Tensor<Float>?) -> Tensor<Float> {
        let y = Tensor<Float>(uninitialized: x.shape.dropLast() + [outFeatures])
        forward(x: x, bias: bias, y: y)
        return y
    }

    /// dx [N…, in] += dy [N…, out] · W (the frozen weight gets no gradient).
    public func backwardData(dy: Tensor<Float>, dx: Tensor<Float>) {
        BFloat16.withRounded(dy) { backwardData(dy: $0, dx: dx) }
    }

    /// The same on an output gradient already rounded (shared with the adapter hooks of the layer);
    /// `overwriting` sets dx instead of adding to it (a fresh, uninitialised dx needs no zero-fill).
    public func backwardData(dy: BF16Rounded, dx: Tensor<Float>, overwriting: Bool = false) {
        precondition(dy.shape.last == outFeatures && dy.count % outFeatures == 0, "BF16Linear: dy \(dy.shape)")
        let n = dy.count / outFeatures
        precondition(dx.count == n * inFeatures, "BF16Linear: dx \(dx.shape) for \(n) × \(inFeatures)")
        let profiled = ProfiledOperation("linear.backward bf16", flops: 2 * n * inFeatures * outFeatures)
        defer { profiled.end() }
        let plan = overwriting ? cached(&overwritingBackwardPlans, n) { backwardPlan(n, accumulate: false) }
                               : cached(&backwardPlans, n) { backwardPlan(n, accumulate: true) }
        plan.run([
            (OneDNN.src, plan.layout(dnnl_query_src_md), UnsafeMutableRawPointer(dy.pointer)),
            (OneDNN.weights, plan.layout(dnnl_query_weights_md), weight.pointer),
            (OneDNN.dst, plan.layout(dnnl_query_dst_md), UnsafeMutableRawPointer(dx.data)),
        ])
    }

    /// The implementation oneDNN runs the forward with for `rows` rows (tests check it is not a reference kernel).
    public func forwardImplementation(rows: Int) -> String {
        cached(&forwardPlans, rows) { forwardPlan(rows, bias: false) }.implementation
    }

    private func cached(_ plans: inout [Int: OneDNNPrimitive], _ n: Int, _ make: () -> OneDNNPrimitive) -> OneDNNPrimitive {
        if let p = plans[n] { return p }
        let p = make()
        plans[n] = p
        return p
    }

    private func forwardPlan(_ n: Int, bias: Bool) -> OneDNNPrimitive {
        var src = OneDNN.descriptor([n, inFeatures], dnnl_bf16, dnnl_ab)
        var wei = OneDNN.descriptor([inFeatures, outFeatures], dnnl_bf16, strides: [1, inFeatures])
        var b = OneDNN.descriptor([1, outFeatures], dnnl_f32, dnnl_ab)
        var dst = OneDNN.descriptor([n, outFeatures], dnnl_f32, dnnl_ab)
        let attr = OneDNN.attributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        guard let p = OneDNNPrimitive({ pd in
            var desc = dnnl_matmul_desc_t()
            let s = bias ? dnnl_matmul_desc_init(&desc, &src, &wei, &b, &dst) : dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst)
            guard s == dnnl_success else { return s }
            return dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil)
        }) else { preconditionFailure("oneDNN has no bf16 matmul for \(n)×\(inFeatures)×\(outFeatures)") }
        return p
    }

    private func backwardPlan(_ n: Int, accumulate: Bool) -> OneDNNPrimitive {
        var src = OneDNN.descriptor([n, outFeatures], dnnl_bf16, dnnl_ab)
        var wei = OneDNN.descriptor([outFeatures, inFeatures], dnnl_bf16, dnnl_ab)
        var dst = OneDNN.descriptor([n, inFeatures], dnnl_f32, dnnl_ab)
        let attr = accumulate ? OneDNN.accumulating() : OneDNN.attributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        guard let p = OneDNNPrimitive({ pd in
            var desc = dnnl_matmul_desc_t()
            let s = dnnl_matmul_desc_init(&desc, &src, &wei, nil, &dst)
            guard s == dnnl_success else { return s }
            return dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil)
        }) else { preconditionFailure("oneDNN has no bf16 matmul for \(n)×\(outFeatures)×\(inFeatures)") }
        return p
    }
}
