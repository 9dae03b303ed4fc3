import Adapters
import Engine
import TestSupport
import Testing
@testable import UNet

/// Gradients of L = mean(c ⊙ output) at t = 500 (partial mask) against PyTorch autograd
/// (Fixtures/reference/unet_grads_<adapter>.safetensors), within 1e-3 scale-relative per tensor.
@Suite struct UNetBackwardTests {
    @Test(arguments: ["official-ortho", "official-vanilla"])
    func gradientsMatchAutograd(adapterID: String) throws {
        let unet = try Reference.unet("folder")
        let x = try Reference.inputs()
        let reference = try Reference.tensors("reference/unet_grads_\(adapterID).safetensors")
        let adapter = try UNetAdapter(try AdapterReader.read(Reference.path(Reference.adapters[adapterID]!)))
        let plain = try unet.forward(latents: x.latents, timestep: 500, context: x.context,
                                     textEmbeds: x.textEmbeds, timeIds: x.timeIds, adapter: adapter)
        let out = try unet.forwardRecording(latents: x.latents, timestep: 500, context: x.context,
                                            textEmbeds: x.textEmbeds, timeIds: x.timeIds, adapter: adapter)
        let outErr = scaleRelative(out, reference["output"]!)
        let loss = Loss.weightedMean(out, weights: x.lossWeights)
        let lossErr = abs(loss - Double(reference["loss"]![0])) / abs(Double(reference["loss"]![0]))
        print("UNet backward \(adapterID): output error \(outErr), loss \(loss) (relative error \(lossErr))")
        #expect(outErr <= 1e-4)
        // Not bitwise here: suites run concurrently, and Attention's serial-BLAS switch is process-wide, so
        // summation order can differ between the two calls (run alone, two calls are bitwise equal).
        let recordingErr = scaleRelative(out, plain)
        #expect(recordingErr <= 1e-5, "recording changes the forward pass by \(recordingErr)")
        #expect(lossErr <= 1e-4)

        let dOut = Tensor<Float>(zeros: out.shape)
        Loss.weightedMeanBackward(weights: x.lossWeights, da: dOut)
        let grads = unet.backward(outputGradient: dOut)

        let latentErr = scaleRelative(grads.latents, reference["grad/latents"]!)
        print("UNet backward \(adapterID): grad/latents error \(latentErr)")
        #expect(latentErr <= 1e-3)

        #expect(grads.factors.count == 176)
        var worst = (0.0, ""), compared = 0
        for (path, g) in grads.factors {
            for (factor, value) in Reference.namedFactors(g) {
                let key = "grad/unet.\(path)/\(factor)"
                let ref = try #require(reference[key], "no reference \(key)")
                let mine = try #require(value)
                let err = scaleRelative(mine, ref.reshaped(mine.shape))
                #expect(Self.maskedEntriesAreZero(mine, factor: factor, kept: 6), "\(key): masked components have gradient")
                if err > worst.0 { worst = (err, key) }
                #expect(err <= 1e-3, "\(key): \(err)")
                compared += 1
            }
        }
        print("UNet backward \(adapterID): \(compared) factor gradients, worst error \(worst.0) at \(worst.1)")
        #expect(compared == 176 * (adapterID == "official-ortho" ? 3 : 2))
    }

    /// Components ≥ `kept` (rows of down/q, columns of up/p, entries of λ) get exactly zero gradient;
    /// the kept ones do not all vanish.
    static func maskedEntriesAreZero(_ g: Tensor<Float>, factor: String, kept: Int) -> Bool {
        let rank = factor == "lambda" ? g.shape[0] : (factor == "down" || factor == "q") ? g.shape[0] : g.shape[1]
        var maskedZero = true, keptNonzero = false
        for i in 0..<g.count {
            let component: Int
            switch factor {
            case "lambda": component = i
            case "down", "q": component = i / g.shape[1]
            default: component = i % rank
            }
            if component >= kept { maskedZero = maskedZero && g[i] == 0 } else if g[i] != 0 { keptNonzero = true }
        }
        return maskedZero && keptNonzero && rank > kept
    }
}

/// Activation recomputation replays each block's forward before its backward: the same gradients.
@Suite struct RecomputationTests {
    @Test func recomputedGradientsEqualRecordedOnes() throws {
        let unet = try Reference.unet("folder")
        let x = try Reference.inputs()
        let adapter = try UNetAdapter(try AdapterReader.read(Reference.path(Reference.adapters["official-ortho"]!)))
        func gradients(recompute: Bool) throws -> (Tensor<Float>, UNetGradients) {
            let out = try unet.forwardRecording(latents: x.latents, timestep: 500, context: x.context, textEmbeds: x.textEmbeds,
                                                timeIds: x.timeIds, adapter: adapter, recompute: recompute)
            let dOut = Tensor<Float>(zeros: out.shape)
            Loss.weightedMeanBackward(weights: x.lossWeights, da: dOut)
            return (out, unet.backward(outputGradient: dOut))
        }
        let (outA, a) = try gradients(recompute: false)
        let (outB, b) = try gradients(recompute: true)
        // 0.0 when run alone (the training CLI test checks whole runs bitwise in their own processes);
        // concurrently running suites may change BLAS's thread count between the two calls, which moves
        // gradients by up to about 1e-5 of their scale.
        var worst = scaleRelative(outB, outA)
        worst = max(worst, scaleRelative(b.latents, a.latents))
        #expect(a.factors.count == b.factors.count)
        for (path, ga) in a.factors {
            guard case let .ortho(qa?, pa?, la?) = ga, case let .ortho(qb?, pb?, lb?)? = b.factors[path] else {
                Issue.record("\(path): missing gradients"); continue
            }
            worst = max(worst, scaleRelative(qb, qa), scaleRelative(pb, pa), scaleRelative(lb, la))
        }
        print("UNet recomputation: worst difference from the recorded pass \(worst)")
        #expect(worst <= 1e-4)
    }
}
