import Engine
import TestSupport
import Testing
@testable import Training
import UNet

/// The training recipe against PyTorch (Fixtures/reference/training.safetensors): the DDPM schedule, the
/// noisy latents, the ε-prediction MSE and its gradients for every stored adapter factor, and AdamW.
@Suite struct RecipeReferenceTests {
    @Test func noiseScheduleMatchesDiffusers() {
        let mine = NoiseSchedule().alphasCumprod, ref = Reference.training["alphas_cumprod"]!
        let err = scaleRelative(Tensor(shape: [mine.count], values: mine), ref)
        print("training: ᾱ_t error \(err)")
        #expect(err <= 1e-6)
    }

    @Test func addNoiseMatchesDiffusers() {
        let r = Reference.training
        let noisy = NoiseSchedule().addNoise(r["z0"]!, noise: r["noise"]!, timestep: 500)
        let err = scaleRelative(noisy, r["noisy"]!)
        print("training: add_noise error \(err)")
        #expect(err <= 1e-6)
    }

    /// Loss within 1e-4 and gradients within 1e-3 (scale-relative per tensor) of autograd; masked T-LoRA
    /// components get exactly zero gradient.
    @Test(arguments: [("tlora", "official-ortho"), ("lora", "official-vanilla")])
    func lossAndGradientsMatchAutograd(method: String, adapterID: String) throws {
        let unet = try Reference.unet()
        let trainer = try Reference.trainer(adapterID: adapterID, method: TrainingMethod(rawValue: method)!, unet: unet)
        let r = Reference.training
        let x = Trainer.StepInputs(example: 0, timestep: 500, latents: r["z0"]!, noise: r["noise"]!)
        let (loss, grads) = try ExclusiveCompute.run { try trainer.lossAndGradients(x) }
        let refLoss = Double(r["\(method)/loss"]![0])
        print("training \(method): loss \(loss) vs \(refLoss)")
        #expect(abs(loss - refLoss) <= 1e-4 * refLoss)
        var compared = 0, worst = 0.0
        for (path, g) in grads.factors {
            let named: [(String, Tensor<Float>?)]
            switch g {
            case let .lowRank(down, up): named = [("down", down), ("up", up)]
            case let .ortho(q, p, lambda): named = [("q", q), ("p", p), ("lambda", lambda)]
            }
            for (factor, value) in named {
                guard let ref = r["\(method)/grad/unet.\(path)/\(factor)"] else { continue }
                let err = scaleRelative(try #require(value), ref)
                worst = max(worst, err)
                #expect(err <= 1e-3, "\(path)/\(factor): \(err)")
                compared += 1
            }
        }
        print("training \(method): \(compared) factor gradients, worst error \(worst)")
        #expect(compared == (method == "tlora" ? 120 : 80))
    }

    /// Three AdamW steps (masked rows with zero gradient included) equal torch.optim.AdamW within 1e-6.
    @Test func adamWMatchesTorch() {
        let r = Reference.training
        let params = (0..<3).map { r["adamw/param_\($0)"]!.clone() }
        let optimizer = AdamW(settings: AdamW.Settings(learningRate: 1e-3, weightDecay: 1e-2), shapes: params.map(\.shape))
        var worst = 0.0
        for k in 0..<3 {
            optimizer.update(params, gradients: (0..<3).map { r["adamw/grad_\(k)_\($0)"]! })
            for i in 0..<3 {
                let err = scaleRelative(params[i], r["adamw/after_\(k)_\(i)"]!)
                worst = max(worst, err)
                #expect(err <= 1e-6, "step \(k + 1), tensor \(i): \(err)")
            }
        }
        print("training: AdamW worst error over 3 steps \(worst)")
    }
}
