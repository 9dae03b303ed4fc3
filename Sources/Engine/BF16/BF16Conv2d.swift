import CDNNL

/// A frozen 2-D convolution's weight [Cout, Cin, k, k] in bf16, run by oneDNN's direct bf16 convolutions
/// (brgconv / jit kernels: bf16 products, Float32 accumulation and output). Same geometry as `Conv2d`:
/// stride s, zero padding p before and q after (q = p unless `trailingPadding` says otherwise).
///
/// Our activations stay Float32 NCHW; oneDNN's fast kernels want channels last, so each call reorders
/// x into bf16 NHWC and the Float32 NHWC result back into NCHW — two memory-bound passes beside the
/// convolution's k²·Cin multiply-adds per output. The weight is rounded to bf16 once and kept in the
/// layout the primitives ask for: the forward's and, once training runs backward, the backward's.
public final class BF16Conv2d: @unchecked Sendable {
    public let outChannels, inChannels, kernel, stride, padding, trailingPadding: Int

    /// The weight, bf16, plain OIHW until a primitive asks for its own layout.
    private var plain: AlignedBuffer?
    /// The weight in each layout a primitive asked for (usually one for the forward, one for backward).
    private var packed: [(layout: dnnl_memory_desc_t, buffer: AlignedBuffer)] = []
    private var forwardPlans: [PlanKey: ForwardPlan] = [:]
    private var backwardPlans: [PlanKey: BackwardPlan] = [:]

    private struct PlanKey: Hashable { let batch, height, width: Int; let bias: Bool }

    private struct ForwardPlan {
        let convolution: OneDNNPrimitive
        let toChannelsLast: OneDNNPrimitive
        let toChannelsFirst: OneDNNPrimitive
        let weights: AlignedBuffer
    }

    private struct BackwardPlan {
        let convolution: OneDNNPrimitive
        let toChannelsLast: OneDNNPrimitive
        let addChannelsFirst: OneDNNPrimitive
        let setChannelsFirst: OneDNNPrimitive
        /// The weight in the backward's layout; nil when it is made afresh for each call (`keepsBackwardWeights`).
        let weights: AlignedBuffer?
    }

    /// Whether the weight's copy in the backward's layout is kept between calls (the default: one reorder in
    /// a run) or made for each call from the forward's copy and dropped after it. Not keeping it saves a
    /// second copy of every convolution weight (SDXL's UNet: about 0.6 GB) for one weight reorder per
    /// backward call, a memory-bound pass far smaller than the convolution's own work; training with
    /// recomputation, which runs where memory is short, asks for it.
    /// Set it before the first backward call.
    public var keepsBackwardWeights = true

    public init(weight w: Tensor<Float>, stride: Int = 1, padding: Int, trailingPadding: Int? = nil) {
        precondition(w.rank == 4 && w.shape[2] == w.shape[3], "BF16Conv2d wants a square weight [O, C, k, k]")
        (outChannels, inChannels, kernel) = (w.shape[0], w.shape[1], w.shape[2])
        (self.stride, self.padding, self.trailingPadding) = (stride, padding, trailingPadding ?? padding)
        let buffer = AlignedBuffer(bytes: 2 * w.count)
        BFloat16.convert(w.data, to: buffer.pointer.assumingMemoryBound(to: UInt16.self), count: w.count)
        plain = buffer
    }

    /// Bytes of the weight copies held now.
    public var bytes: Int { (plain?.bytes ?? 0) + packed.reduce(0) { $0 + $1.buffer.bytes } }

    public func outputSize(_ size: Int) -> Int { (size + padding + trailingPadding - kernel) / stride + 1 }

    /// y [B, Cout, Ho, Wo] = conv(x [B, Cin, H, W]) + bias (y is overwritten).
    public func forward(x: Tensor<Float>, bias: Tensor<Float>?, y: Tensor<Float>) {
        let key = key(x, bias: bias != nil)
        let (ho, wo) = (outputSize(key.height), outputSize(key.width))
        precondition(y.shape == [key.batch, outChannels, ho, wo], "BF16Conv2d: y \(y.shape) for x \(x.shape)")
        if let bias { precondition(bias.count == outChannels, "BF16Conv2d: bias \(bias.shape)") }
        let profiled = ProfiledOperation(kernel == 1 ? "conv2d.forward 1×1 bf16" : "conv2d.forward k×k bf16",
                                         flops: 2 * key.batch * outChannels * inChannels * kernel * kernel * ho * wo)
        defer { profiled.end() }
        let plan = forwardPlans[key] ?? makeForwardPlan(key)
        let conv = plan.convolution
        let src = conv.layout(dnnl_query_src_md), dst = conv.layout(dnnl_query_dst_md)
        Scratch.withBytes(OneDNN.bytes(src)) { xb in
            plan.toChannelsLast.run([(OneDNN.src, activations(x.shape, dnnl_f32), UnsafeMutableRawPointer(x.data)),
                                     (OneDNN.dst, src, xb)])
            Scratch.withBytes(OneDNN.bytes(dst)) { yb in
                var args: [(slot: Int32, layout: dnnl_memory_desc_t, pointer: UnsafeMutableRawPointer)] = [
                    (OneDNN.src, src, xb), (OneDNN.weights, conv.layout(dnnl_query_weights_md), plan.weights.pointer),
                    (OneDNN.dst, dst, yb),
                ]
                if let bias { args.append((OneDNN.bias, OneDNN.descriptor([outChannels], dnnl_f32, dnnl_a), UnsafeMutableRawPointer(bias.data))) }
                conv.run(args)
                plan.toChannelsFirst.run([(OneDNN.src, dst, yb),
                                          (OneDNN.dst, activations(y.shape, dnnl_f32), UnsafeMutableRawPointer(y.data))])
            }
        }
    }

    /// Allocating convenience: returns y [B, Cout, Ho, Wo].
    public func forward(x: Tensor<Float>, bias: Tensor<Float>?) -> Tensor<Float> {
        let y = Tensor<Float>(uninitialized: [x.shape[0], outChannels, outputSize(x.shape[2]), outputSize(x.shape[3])])
        forward(x: x, bias: bias, y: y)
        return y
    }

    /// dx [B, Cin, H, W] += convᵀ(dy [B, Cout, Ho, Wo]) (the frozen weight gets no gradient);
    /// `overwriting` sets dx instead (a fresh, uninitialised dx needs no zero-fill).
    public func backwardData(dy: Tensor<Float>, dx: Tensor<Float>, overwriting: Bool = false) {
        let key = key(dx, bias: false)
        let (ho, wo) = (outputSize(key.height), outputSize(key.width))
        precondition(dy.shape == [key.batch, outChannels, ho, wo], "BF16Conv2d: dy \(dy.shape) for dx \(dx.shape)")
        let profiled = ProfiledOperation(kernel == 1 ? "conv2d.backward 1×1 bf16" : "conv2d.backward k×k bf16",
                                         flops: 2 * key.batch * outChannels * inChannels * kernel * kernel * ho * wo)
        defer { profiled.end() }
        let plan = backwardPlans[key] ?? makeBackwardPlan(key)
        let conv = plan.convolution
        let diffDst = conv.layout(dnnl_query_diff_dst_md), diffSrc = conv.layout(dnnl_query_diff_src_md)
        Scratch.withBytes(OneDNN.bytes(diffDst)) { db in
            plan.toChannelsLast.run([(OneDNN.src, activations(dy.shape, dnnl_f32), UnsafeMutableRawPointer(dy.data)),
                                     (OneDNN.dst, diffDst, db)])
            Scratch.withBytes(OneDNN.bytes(diffSrc)) { gb in
                withBackwardWeights(plan) { layout, weights in
                    conv.run([(OneDNN.diffDst, diffDst, db), (OneDNN.weights, layout, weights), (OneDNN.diffSrc, diffSrc, gb)])
                }
                (overwriting ? plan.setChannelsFirst : plan.addChannelsFirst).run(
                    [(OneDNN.src, diffSrc, gb), (OneDNN.dst, activations(dx.shape, dnnl_f32), UnsafeMutableRawPointer(dx.data))])
            }
        }
    }

    /// The implementation oneDNN runs the forward with for input [B, Cin, H, W] (tests check it is a bf16 kernel).
    public func forwardImplementation(batch: Int, height: Int, width: Int) -> String {
        let key = PlanKey(batch: batch, height: height, width: width, bias: false)
        return (forwardPlans[key] ?? makeForwardPlan(key)).convolution.implementation
    }

    // MARK: Plans

    private func key(_ x: Tensor<Float>, bias: Bool) -> PlanKey {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "BF16Conv2d: x \(x.shape) for \(inChannels) input channels")
        precondition(outputSize(x.shape[2]) > 0 && outputSize(x.shape[3]) > 0, "BF16Conv2d: empty output for \(x.shape)")
        return PlanKey(batch: x.shape[0], height: x.shape[2], width: x.shape[3], bias: bias)
    }

    private func activations(_ shape: [Int], _ type: dnnl_data_type_t, channelsLast: Bool = false) -> dnnl_memory_desc_t {
        OneDNN.descriptor(shape, type, channelsLast ? dnnl_nhwc : dnnl_nchw)
    }

    private func shapes(_ key: PlanKey) -> (src: [Int], dst: [Int]) {
        ([key.batch, inChannels, key.height, key.width], [key.batch, outChannels, outputSize(key.height), outputSize(key.width)])
    }

    /// The forward convolution for `key` in training mode (so it can hint the backward's choice).
    private func forwardConvolution(_ key: PlanKey, dstType: dnnl_data_type_t) -> OneDNNPrimitive {
        let (srcShape, dstShape) = shapes(key)
        var src = activations(srcShape, dnnl_bf16, channelsLast: true)
        var wei = OneDNN.descriptor([outChannels, inChannels, kernel, kernel], dnnl_bf16, dnnl_format_tag_any)
        var bias = OneDNN.descriptor([outChannels], dnnl_f32, dnnl_a)
        var dst = activations(dstShape, dstType, channelsLast: true)
        let strides: [Int64] = [Int64(stride), Int64(stride)]
        let before: [Int64] = [Int64(padding), Int64(padding)], after: [Int64] = [Int64(trailingPadding), Int64(trailingPadding)]
        let attr = OneDNN.attributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        guard let p = OneDNNPrimitive({ pd in
            var desc = dnnl_convolution_desc_t()
            let s = key.bias
                ? dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct,
                                                     &src, &wei, &bias, &dst, strides, before, after)
                : dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct,
                                                     &src, &wei, nil, &dst, strides, before, after)
            guard s == dnnl_success else { return s }
            return dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, nil)
        }) else { preconditionFailure("oneDNN has no bf16 convolution for \(srcShape) → \(dstShape)") }
        return p
    }

    private func makeForwardPlan(_ key: PlanKey) -> ForwardPlan {
        let conv = forwardConvolution(key, dstType: dnnl_f32)
        let (srcShape, dstShape) = shapes(key)
        let plan = ForwardPlan(
            convolution: conv,
            toChannelsLast: OneDNNPrimitive(reorder: activations(srcShape, dnnl_f32), to: conv.layout(dnnl_query_src_md)),
            toChannelsFirst: OneDNNPrimitive(reorder: conv.layout(dnnl_query_dst_md), to: activations(dstShape, dnnl_f32)),
            weights: weights(in: conv.layout(dnnl_query_weights_md)))
        forwardPlans[key] = plan
        return plan
    }

    private func makeBackwardPlan(_ key: PlanKey) -> BackwardPlan {
        let hint = forwardConvolution(key, dstType: dnnl_bf16)
        let (srcShape, dstShape) = shapes(key)
        var diffSrc = activations(srcShape, dnnl_f32, channelsLast: true)
        var wei = OneDNN.descriptor([outChannels, inChannels, kernel, kernel], dnnl_bf16, dnnl_format_tag_any)
        var diffDst = activations(dstShape, dnnl_bf16, channelsLast: true)
        let strides: [Int64] = [Int64(stride), Int64(stride)]
        let before: [Int64] = [Int64(padding), Int64(padding)], after: [Int64] = [Int64(trailingPadding), Int64(trailingPadding)]
        let attr = OneDNN.attributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        guard let conv = OneDNNPrimitive({ pd in
            var desc = dnnl_convolution_desc_t()
            let s = dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &diffSrc, &wei, &diffDst,
                                                              strides, before, after)
            guard s == dnnl_success else { return s }
            return dnnl_primitive_desc_create(&pd, &desc, attr, OneDNN.engine, hint.descriptor)
        }) else { preconditionFailure("oneDNN has no bf16 backward convolution for \(dstShape) → \(srcShape)") }
        let plan = BackwardPlan(
            convolution: conv,
            toChannelsLast: OneDNNPrimitive(reorder: activations(dstShape, dnnl_f32), to: conv.layout(dnnl_query_diff_dst_md)),
            addChannelsFirst: OneDNNPrimitive(reorder: conv.layout(dnnl_query_diff_src_md), to: activations(srcShape, dnnl_f32),
                                              accumulate: true),
            setChannelsFirst: OneDNNPrimitive(reorder: conv.layout(dnnl_query_diff_src_md), to: activations(srcShape, dnnl_f32)),
            weights: keepsBackwardWeights ? weights(in: conv.layout(dnnl_query_weights_md)) : nil)
        backwardPlans[key] = plan
        return plan
    }

    /// The weight in `layout`: a copy already made for it, else a reorder of the plain or first packed copy.
    /// The plain copy is released once a primitive has asked for another layout.
    private func weights(in layout: dnnl_memory_desc_t) -> AlignedBuffer {
        if let hit = packed.first(where: { OneDNN.equal($0.layout, layout) }) { return hit.buffer }
        if let plain, OneDNN.equal(plainLayout, layout) {
            packed.append((layout, plain))
            self.plain = nil
            return plain
        }
        let buffer = reordered(to: layout)
        packed.append((layout, buffer))
        plain = nil
        return buffer
    }

    private var plainLayout: dnnl_memory_desc_t {
        OneDNN.descriptor([outChannels, inChannels, kernel, kernel], dnnl_bf16, dnnl_oihw)
    }

    /// A new copy of the weight in `layout`, reordered from the plain or first packed copy.
    private func reordered(to layout: dnnl_memory_desc_t) -> AlignedBuffer {
        let buffer = AlignedBuffer(bytes: OneDNN.bytes(layout))
        reorder(to: layout, into: buffer.pointer)
        return buffer
    }

    private func reorder(to layout: dnnl_memory_desc_t, into target: UnsafeMutableRawPointer) {
        let (from, source): (dnnl_memory_desc_t, AlignedBuffer) = plain.map { (plainLayout, $0) } ?? (packed[0].layout, packed[0].buffer)
        OneDNNPrimitive(reorder: from, to: layout).run([(OneDNN.src, from, source.pointer), (OneDNN.dst, layout, target)])
    }

    /// The backward's weight: the kept copy, or one reordered into a work buffer for this call.
    private func withBackwardWeights(_ plan: BackwardPlan, _ body: (dnnl_memory_desc_t, UnsafeMutableRawPointer) -> Void) {
        let layout = plan.convolution.layout(dnnl_query_weights_md)
        if let kept = plan.weights { return body(layout, kept.pointer) }
        Scratch.withBytes(OneDNN.bytes(layout)) { buffer in
            reorder(to: layout, into: buffer)
            body(layout, buffer)
        }
    }
}
