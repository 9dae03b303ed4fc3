import Engine
import SDXL
import Testing
@testable import Training
import UNet
import VAE

/// Training learns: 60 steps on the shipped demo image (64 px, rank 4) bring the ε-prediction loss on
/// held-out (noise, timestep) draws of that image below the base model's loss on the same draws.
@Suite struct LearningTests {
    @Test func sixtyStepsLowerTheHeldOutLoss() throws {
        let (base, trained) = try train(steps: 60, precision: .fp32)
        print("training: held-out loss base \(base), after 60 steps \(trained)")
        #expect(trained < base)
    }

    /// bf16 learns as Float32 does: the held-out loss gain of the same run (same seed, same draws) within
    /// 10 % of the Float32 run's.
    @Test(.enabled(if: Precision.hardwareHasBF16, "needs native bf16 (AVX-512 BF16 or AMX); skipped on this CPU"))
    func bf16GainsAsMuchAsFloat32() throws {
        let (base32, trained32) = try train(steps: 200, precision: .fp32)
        let (base16, trained16) = try train(steps: 200, precision: .bf16)
        let gain32 = base32 - trained32, gain16 = base16 - trained16
        print("training 200 steps: held-out gain fp32 \(gain32) (\(base32) → \(trained32)), bf16 \(gain16) (\(base16) → \(trained16))")
        #expect(gain32 > 0)
        #expect(abs(gain16 - gain32) <= 0.1 * gain32)
    }

    /// Held-out loss of the base model and after `steps` steps on the demo image (64 px, rank 4).
    func train(steps: Int, precision: Precision) throws -> (base: Double, trained: Double) {
        try ExclusiveCompute.run { try trainUnshared(steps: steps, precision: precision) }
    }

    func trainUnshared(steps: Int, precision: Precision) throws -> (base: Double, trained: Double) {
        let model = try SDXLModel.open(Reference.path("models/tiny-sdxl"))
        let unet = try SDXLUNet(model: model)
        unet.use(precision)
        let vae = try AutoencoderKL(model: model)
        let examples = try TrainingData.examples(images: [Reference.path("images/demo.jpg")], resolution: 64, vae: vae)
        let conditioning = try TrainingData.conditioning(prompt: "a photo of sks mug", model: model)
        let adapter = try TrainableAdapter.initialized(for: unet, method: .tlora, rank: 4, minRank: 2, rankAlpha: 1,
                                                       spectrum: .last, seed: 0)
        let trainer = Trainer(
            unet: unet, adapter: adapter,
            optimizer: AdamW(settings: AdamW.Settings(learningRate: 1e-3), shapes: adapter.parameters.map(\.tensor.shape)),
            examples: examples, conditioning: conditioning,
            scalingFactor: vae.scalingFactor, seed: 0)
        let base = try trainer.heldOutLoss(draws: 24, withAdapter: false)
        let initial = try trainer.heldOutLoss(draws: 24)
        // ΔW starts at zero; in bf16 the adapter's Float32 round-off (≈ 1e-7) still flips a few bf16 roundings downstream.
        let bound = precision == .fp32 ? 1e-6 : 1e-4
        #expect(abs(initial - base) <= bound * base, "the initial adapter changes the UNet (ΔW must start at zero)")
        for k in 0..<steps { try trainer.step(k) }
        return (base, try trainer.heldOutLoss(draws: 24))
    }
}
