import Engine

// The training pass of the UNet: the recording forward, the backward into latents and adapter factors.

/// Gradients of one backward pass: dL/d(latents) and dL/d(each bound adapter factor), by module path.
/// Masked components (index ≥ active) have zero gradient; frozen weights have none.
public struct UNetGradients {
    public let latents: Tensor<Float>
    public let factors: [String: AdapterGradients<Float>]
}

extension SDXLUNet {
    /// The forward pass of a training step: as `forward`, but layers keep what `backward` needs. With
    /// `recompute`, only block inputs are kept and each block runs again just before its backward (same
    /// gradients, bitwise; about one more forward pass of time for much less memory). One recorded pass
    /// at a time per model.
    public func forwardRecording(
        latents: Tensor<Float>, timestep: Float, context: Tensor<Float>, textEmbeds: Tensor<Float>,
        timeIds: Tensor<Float>, adapter: UNetAdapter? = nil, recompute: Bool = false
    ) throws -> Tensor<Float> {
        let pass = UNetPass(bindings: try bindings(adapter, at: Double(timestep)), recording: true, recomputes: recompute)
        try validate(latents: latents, context: context, textEmbeds: textEmbeds, timeIds: timeIds)
        return run(latents: latents, timestep: timestep, context: context, textEmbeds: textEmbeds, timeIds: timeIds, pass)
    }

    /// Backward of the last `forwardRecording` (once; the kept activations are released as it goes):
    /// dOutput [B, Cout, H, W] = dL/d(output).
    public func backward(outputGradient dOutput: Tensor<Float>) -> UNetGradients {
        guard let (pass, concatShapes, normed) = recorded else {
            preconditionFailure("UNet backward without a recording forward pass")
        }
        recorded = nil
        let grads = UNetGradientStore(bindings: pass.bindings)
        var dh = normOut.backward(siluBackward(convOut.backward(dOutput), input: normed))

        // Up path, last layer first; the skip gradients come out in the order the skips were made.
        var skipGrads: [Tensor<Float>] = []
        var c = concatShapes.count
        for level in up.reversed() {
            if let us = level.upsample {
                let dBig = us.backward(dh)
                let dSmall = Tensor<Float>(zeros: [dBig.shape[0], dBig.shape[1], dBig.shape[2] / 2, dBig.shape[3] / 2])
                Upsample2x.backward(dy: dBig, dx: dSmall)
                dh = dSmall
            }
            for j in level.resnets.indices.reversed() {
                if !level.attentions.isEmpty { dh = replayed(level.attentions[j], pass).backward(dh, pass, grads) }
                let dJoined = replayed(level.resnets[j], pass).backward(dh)
                c -= 1
                let shapes = concatShapes[c]
                let dPrev = Tensor<Float>(zeros: shapes[0]), dSkip = Tensor<Float>(zeros: shapes[1])
                ChannelConcat.backward(dy: dJoined, dParts: [dPrev, dSkip], shapes: shapes)
                skipGrads.append(dSkip)
                dh = dPrev
            }
        }

        dh = replayed(midResnets[1], pass).backward(dh)
        if let midAttention { dh = replayed(midAttention, pass).backward(dh, pass, grads) }
        dh = replayed(midResnets[0], pass).backward(dh)

        var s = skipGrads.count - 1
        for level in down.reversed() {
            if let ds = level.downsample {
                accumulate(dh, skipGrads[s]); s -= 1
                dh = ds.backward(dh)
            }
            for j in level.resnets.indices.reversed() {
                accumulate(dh, skipGrads[s]); s -= 1
                if !level.attentions.isEmpty { dh = replayed(level.attentions[j], pass).backward(dh, pass, grads) }
                dh = replayed(level.resnets[j], pass).backward(dh)
            }
        }
        accumulate(dh, skipGrads[s])
        precondition(s == 0, "UNet backward: \(s) skip gradients left")
        return UNetGradients(latents: convIn.backward(dh), factors: grads.factors)
    }

    /// In a recomputing pass, runs the block's forward again from its kept input, recording, so that its
    /// backward finds its activations; otherwise the block as recorded.
    func replayed(_ block: ResnetBlock, _ pass: UNetPass) -> ResnetBlock {
        if pass.recomputes, let x = pass.blockInputs.removeValue(forKey: ObjectIdentifier(block)) {
            _ = block.forward(x, siluEmb: pass.embedding!, pass)
        }
        return block
    }

    func replayed(_ block: SpatialTransformer, _ pass: UNetPass) -> SpatialTransformer {
        if pass.recomputes, let x = pass.blockInputs.removeValue(forKey: ObjectIdentifier(block)) {
            block.replayEnds(x, pass)
        }
        return block
    }
}

// Each layer's and block's backward sits beside its forward (Layers.swift, Blocks.swift): it takes
// dL/d(output) and returns dL/d(input), using what the recording forward pass kept (or what a replay of
// the block recorded, when the pass recomputes), and drops it, so memory falls as backward proceeds.
// Frozen weights get no gradient buffers; adapter factors accumulate into `UNetGradientStore`.

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
