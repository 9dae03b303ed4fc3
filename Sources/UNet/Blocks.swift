import Engine

/// diffusers `Attention` (no biases on q/k/v, bias on `to_out.0`). Each projection carries the adapter hook.
/// x [B, L, C], context [B, Lk, Cc] (nil: self-attention) → [B, L, C].
final class AttentionBlock {
    let toQ, toK, toV, toOut: DenseLayer
    let heads: Int
    /// bf16: the score and mixing products run in bf16 (`BF16Attention`), softmax stays Float32.
    var precision = Precision.fp32
    var saved: (q: Tensor<Float>, k: Tensor<Float>, v: Tensor<Float>)?

    init(_ source: UNetWeightSource, _ path: String, heads: Int) throws {
        toQ = try DenseLayer(source, path + ".to_q")
        toK = try DenseLayer(source, path + ".to_k")
        toV = try DenseLayer(source, path + ".to_v")
        toOut = try DenseLayer(source, path + ".to_out.0")
        guard heads > 0, toQ.outFeatures % heads == 0 else {
            throw UNetError.noConfig("\(path): \(toQ.outFeatures) attention channels do not split into \(heads) heads")
        }
        self.heads = heads
    }

    var projections: [DenseLayer] { [toQ, toK, toV, toOut] }

    func forward(_ x: Tensor<Float>, context: Tensor<Float>?, _ pass: UNetPass) -> Tensor<Float> {
        let kv = context ?? x
        let q = toQ.forward(x, pass), k = toK.forward(kv, pass), v = toV.forward(kv, pass)
        let o = precision == .bf16 ? BF16Attention.forward(q: q, k: k, v: v, heads: heads)
                                   : Attention.forward(q: q, k: k, v: v, heads: heads)
        saved = pass.recording ? (q, k, v) : nil
        return toOut.forward(o, pass)
    }
}

extension AttentionBlock {
    /// dOut [B, L, C] → dx [B, L, C]. Cross-attention passes no gradient to the context (text embeddings are
    /// inputs, not trained here), but its to_k / to_v adapters still get theirs.
    func backward(_ dOut: Tensor<Float>, isSelf: Bool, _ pass: UNetPass, _ grads: UNetGradientStore) -> Tensor<Float> {
        let (q, k, v) = recorded(saved, "attention q, k, v")
        saved = nil
        let dO = toOut.backward(dOut, pass, grads)!
        let dq = Tensor<Float>(zeros: q.shape), dk = Tensor<Float>(zeros: k.shape), dv = Tensor<Float>(zeros: v.shape)
        if precision == .bf16 {
            BF16Attention.backward(dOut: dO, q: q, k: k, v: v, heads: heads, dq: dq, dk: dk, dv: dv)
        } else {
            Attention.backward(dOut: dO, q: q, k: k, v: v, heads: heads, dq: dq, dk: dk, dv: dv)
        }
        let dx = toQ.backward(dq, pass, grads)!
        let dkx = toK.backward(dk, pass, grads, needInput: isSelf)
        let dvx = toV.backward(dv, pass, grads, needInput: isSelf)
        if let dkx { accumulate(dx, dkx) }
        if let dvx { accumulate(dx, dvx) }
        return dx
    }
}

/// diffusers `BasicTransformerBlock` as SDXL uses it (pre-LayerNorm, self- then cross-attention, GEGLU
/// feed-forward, residual after each). h [B, L, C] → [B, L, C].
final class TransformerBlock {
    let norm1, norm2, norm3: LayerNormLayer
    let attn1, attn2: AttentionBlock
    let ffIn, ffOut: DenseLayer
    var savedGate: Tensor<Float>?

    init(_ source: UNetWeightSource, _ path: String, heads: Int) throws {
        norm1 = try LayerNormLayer(source, path + ".norm1")
        norm2 = try LayerNormLayer(source, path + ".norm2")
        norm3 = try LayerNormLayer(source, path + ".norm3")
        attn1 = try AttentionBlock(source, path + ".attn1", heads: heads)
        attn2 = try AttentionBlock(source, path + ".attn2", heads: heads)
        ffIn = try DenseLayer(source, path + ".ff.net.0.proj")
        ffOut = try DenseLayer(source, path + ".ff.net.2")
    }

    func forward(_ h: Tensor<Float>, context: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        let h1 = added(h, attn1.forward(norm1.forward(h, pass), context: nil, pass))
        let h2 = added(h1, attn2.forward(norm2.forward(h1, pass), context: context, pass))
        let p = ffIn.forward(norm3.forward(h2, pass), pass)
        let g = Tensor<Float>(uninitialized: Array(p.shape.dropLast()) + [p.shape.last! / 2])
        GEGLU.forward(p: p, y: g)
        savedGate = pass.recording ? p : nil
        return added(h2, ffOut.forward(g, pass))
    }
}

extension TransformerBlock {
    func backward(_ dh3: Tensor<Float>, _ pass: UNetPass, _ grads: UNetGradientStore) -> Tensor<Float> {
        let p = recorded(savedGate, "GEGLU input")
        savedGate = nil
        // h3 = h2 + ff(norm3(h2))
        let dg = ffOut.backward(dh3, pass, grads)!
        let dp = Tensor<Float>(zeros: p.shape)
        GEGLU.backward(dy: dg, p: p, dp: dp)
        let dh2 = norm3.backward(ffIn.backward(dp, pass, grads)!)
        accumulate(dh2, dh3)
        // h2 = h1 + attn2(norm2(h1), context)
        let dh1 = norm2.backward(attn2.backward(dh2, isSelf: false, pass, grads))
        accumulate(dh1, dh2)
        // h1 = h + attn1(norm1(h))
        let dh = norm1.backward(attn1.backward(dh1, isSelf: true, pass, grads))
        accumulate(dh, dh1)
        return dh
    }
}

/// diffusers `Transformer2DModel` with linear projections: GroupNorm (eps 1e-6) → proj_in → blocks →
/// proj_out → + input. x [B, C, H, W] → [B, C, H, W].
final class SpatialTransformer {
    let norm: GroupNormLayer
    let projIn, projOut: DenseLayer
    /// Every Linear of the transformer: proj_in/proj_out, each block's feed-forward and attention projections.
    var linears: [DenseLayer] { [projIn, projOut] + blocks.flatMap { [$0.ffIn, $0.ffOut] + $0.attn1.projections + $0.attn2.projections } }
    let blocks: [TransformerBlock]

    init(_ source: UNetWeightSource, _ path: String, depth: Int, heads: Int, groups: Int) throws {
        norm = try GroupNormLayer(source, path + ".norm", groups: groups, eps: 1e-6)
        projIn = try DenseLayer(source, path + ".proj_in")
        projOut = try DenseLayer(source, path + ".proj_out")
        blocks = try (0..<depth).map { try TransformerBlock(source, path + ".transformer_blocks.\($0)", heads: heads) }
    }

    /// `keeping`: a recomputing pass that keeps each transformer block's input and proj_out's (this
    /// forward then runs without recording; see `replayEnds`).
    func forward(_ x: Tensor<Float>, context: Tensor<Float>, _ pass: UNetPass, keeping: UNetPass? = nil) -> Tensor<Float> {
        let (height, width) = (x.shape[2], x.shape[3])
        var h = projIn.forward(toTokens(norm.forward(x, pass)), pass)
        for block in blocks {
            keeping?.blockInputs[ObjectIdentifier(block)] = h
            h = block.forward(h, context: context, pass)
        }
        keeping?.blockInputs[ObjectIdentifier(projOut)] = h
        let out = toChannels(projOut.forward(h, pass), height: height, width: width)
        accumulate(out, x)
        return out
    }

    var attentions: [AttentionBlock] { blocks.flatMap { [$0.attn1, $0.attn2] } }
}

extension SpatialTransformer {
    func backward(_ dOut: Tensor<Float>, _ pass: UNetPass, _ grads: UNetGradientStore) -> Tensor<Float> {
        let (height, width) = (dOut.shape[2], dOut.shape[3])
        var dh = projOut.backward(toTokens(dOut), pass, grads)!
        for block in blocks.reversed() { dh = replayed(block, pass).backward(dh, pass, grads) }
        let dx = norm.backward(toChannels(projIn.backward(dh, pass, grads)!, height: height, width: width))
        accumulate(dx, dOut)
        return dx
    }

    /// In a recomputing pass: runs the layers around the transformer blocks again from the kept inputs,
    /// recording (norm and proj_in from the transformer's input, proj_out from the last block's output), so
    /// that the blocks themselves can be replayed one at a time by `backward`: at most one transformer
    /// block's activations are alive (SDXL's deepest transformers have ten).
    func replayEnds(_ x: Tensor<Float>, _ pass: UNetPass) {
        _ = projIn.forward(toTokens(norm.forward(x, pass)), pass)
        if let last = pass.blockInputs.removeValue(forKey: ObjectIdentifier(projOut)) { _ = projOut.forward(last, pass) }
    }

    /// The block as recorded, or, in a recomputing pass, run again from its kept input, recording.
    private func replayed(_ block: TransformerBlock, _ pass: UNetPass) -> TransformerBlock {
        if pass.recomputes, let h = pass.blockInputs.removeValue(forKey: ObjectIdentifier(block)) {
            _ = block.forward(h, context: pass.context!, pass)
        }
        return block
    }
}

/// diffusers `ResnetBlock2D` (SDXL settings: GroupNorm eps 1e-5, SiLU, time embedding added after conv1,
/// 1×1 shortcut when channels change, output scale 1). x [B, Cin, H, W], siluEmb [B, E] → [B, Cout, H, W].
final class ResnetBlock {
    let norm1, norm2: GroupNormLayer
    let conv1, conv2: ConvLayer
    let timeProj: DenseLayer
    let shortcut: ConvLayer?
    var saved: (a1: Tensor<Float>, a2: Tensor<Float>)?

    init(_ source: UNetWeightSource, _ path: String, groups: Int, eps: Double = 1e-5) throws {
        norm1 = try GroupNormLayer(source, path + ".norm1", groups: groups, eps: eps)
        conv1 = try ConvLayer(source, path + ".conv1")
        timeProj = try DenseLayer(source, path + ".time_emb_proj")
        norm2 = try GroupNormLayer(source, path + ".norm2", groups: groups, eps: eps)
        conv2 = try ConvLayer(source, path + ".conv2")
        shortcut = source.has(path + ".conv_shortcut.weight") ? try ConvLayer(source, path + ".conv_shortcut") : nil
    }

    var outChannels: Int { conv2.outChannels }

    func forward(_ x: Tensor<Float>, siluEmb: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        let n1 = norm1.forward(x, pass)
        let a1 = Activation.silu.forward(n1)
        let h = conv1.forward(a1, pass)
        let temb = timeProj.forward(siluEmb, pass)  // [B, Cout]
        let (b, c, s) = (h.shape[0], h.shape[1], h.shape[2] * h.shape[3])
        for i in 0..<b {
            for ch in 0..<c {
                let v = temb.data[i * c + ch], row = h.data + (i * c + ch) * s
                for j in 0..<s { row[j] += v }
            }
        }
        let n2 = norm2.forward(h, pass)
        let a2 = Activation.silu.forward(n2)
        let out = conv2.forward(a2, pass)
        saved = pass.recording ? (n1, n2) : nil
        accumulate(out, shortcut?.forward(x, pass) ?? x)
        return out
    }
}

extension ResnetBlock {
    /// The time embedding is not differentiated: it depends only on the timestep and the micro-conditioning.
    func backward(_ dOut: Tensor<Float>) -> Tensor<Float> {
        let (n1, n2) = recorded(saved, "resnet activations")
        saved = nil
        let dh = norm2.backward(siluBackward(conv2.backward(dOut), input: n2))
        let dx = norm1.backward(siluBackward(conv1.backward(dh), input: n1))
        accumulate(dx, shortcut?.backward(dOut) ?? dOut)
        return dx
    }
}
