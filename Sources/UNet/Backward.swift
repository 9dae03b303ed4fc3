import Engine

// Backward passes of the UNet's layers, in the reverse order of their forward passes. Every function takes
// dL/d(output) and returns dL/d(input), using what the recording forward pass kept (or what a replay of
// the block recorded, when the pass recomputes).
// Frozen weights get no gradient buffers; adapter factors accumulate into `UNetGradientStore`.
// Each layer drops what it kept once its backward has run, so memory falls as backward proceeds.

/// Gradient buffers of the bound adapter factors, by module path.
final class UNetGradientStore {
    var factors: [String: AdapterGradients<Float>] = [:]

    init(bindings: [String: [UNetPass.Binding]]) {
        for (path, bound) in bindings {
            guard let b = bound.first else { continue }
            switch b.factors {
            case let .lowRank(down, up, _):
                factors[path] = .lowRank(down: Tensor(zeros: down.shape), up: Tensor(zeros: up.shape))
            case let .ortho(q, p, lambda, _, _, _):
                factors[path] = .ortho(q: Tensor(zeros: q.shape), p: Tensor(zeros: p.shape), lambda: Tensor(zeros: lambda.shape))
            }
        }
    }
}

private func recorded<V>(_ value: V?, _ what: String) -> V {
    guard let value else { preconditionFailure("UNet backward: \(what) was not recorded (run the recording forward first)") }
    return value
}

extension DenseLayer {
    /// dy [N…, out] → dx [N…, in] (nil when `needInput` is false); adapter factor gradients accumulate.
    func backward(_ dy: Tensor<Float>, _ pass: UNetPass, _ grads: UNetGradientStore, needInput: Bool = true) -> Tensor<Float>? {
        let x = recorded(savedInput, path)
        savedInput = nil
        let dx = needInput ? Tensor<Float>(zeros: x.shape) : nil
        if let dx {
            if let bf16 { bf16.backwardData(dy: dy, dx: dx) } else { Linear.backward(dy: dy, x: x, weight: weight, dx: dx, dWeight: nil, dBias: nil) }
        }
        if let b = pass.bindings[path]?.first, let g = grads.factors[path] {
            LowRankAdapter.backward(dy: dy, x: x, factors: b.factors, active: b.active, dx: dx, gradients: g)
        }
        return dx
    }
}

extension ConvLayer {
    func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let x = recorded(savedInput, "conv input")
        savedInput = nil
        let dx = Tensor<Float>(zeros: x.shape)
        if let bf16 {
            bf16.backwardData(dy: dy, dx: dx)
        } else {
            Conv2d.backward(dy: dy, x: x, weight: weight, stride: stride, padding: padding, dx: dx, dWeight: nil, dBias: nil)
        }
        return dx
    }
}

extension GroupNormLayer {
    func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let (x, stats) = recorded(saved, "group norm input")
        saved = nil
        let dx = Tensor<Float>(zeros: x.shape)
        GroupNorm.backward(dy: dy, x: x, stats: stats, groups: groups, gamma: gamma, dx: dx, dGamma: nil, dBeta: nil)
        return dx
    }
}

extension LayerNormLayer {
    func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let (x, stats) = recorded(saved, "layer norm input")
        saved = nil
        let dx = Tensor<Float>(zeros: x.shape)
        LayerNorm.backward(dy: dy, x: x, stats: stats, gamma: gamma, dx: dx, dGamma: nil, dBeta: nil)
        return dx
    }
}

/// dL/dx of y = silu(x), given dL/dy.
func siluBackward(_ dy: Tensor<Float>, input x: Tensor<Float>) -> Tensor<Float> {
    let dx = Tensor<Float>(zeros: x.shape)
    Activation.silu.backward(dy: dy, x: x, dx: dx)
    return dx
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

extension SpatialTransformer {
    func backward(_ dOut: Tensor<Float>, _ pass: UNetPass, _ grads: UNetGradientStore) -> Tensor<Float> {
        let (height, width) = (dOut.shape[2], dOut.shape[3])
        var dh = projOut.backward(toTokens(dOut), pass, grads)!
        for block in blocks.reversed() { dh = block.backward(dh, pass, grads) }
        let dx = norm.backward(toChannels(projIn.backward(dh, pass, grads)!, height: height, width: width))
        accumulate(dx, dOut)
        return dx
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
