import Engine
import Imaging
import SDXL
import Testing
import TextEncoders
@testable import Training
import UNet
import VAE

/// Training learns: 60 steps on the shipped demo image (64 px, rank 4) bring the ε-prediction loss on
/// held-out (noise, timestep) draws of that image below the base model's loss on the same draws.
@Suite struct LearningTests {
    @Test func sixtyStepsLowerTheHeldOutLoss() throws {
        let model = try SDXLModel.open(Reference.path("models/tiny-sdxl"))
        let unet = try SDXLUNet(model: model)
        let vae = try AutoencoderKL(model: model)
        let image = try ImageFile.decode(path: Reference.path("images/demo.jpg")).image.centerCropSquare().resized(to: 64)
        let posterior = try vae.encode(images: Tensor(shape: [1, 3, 64, 64], values: image.toTensorCHW()))
        let example = TrainingExample(mean: posterior.mean, std: posterior.std,
                                      timeIds: Tensor(shape: [1, 6], values: [384, 384, 0, 0, 64, 64]))
        let (context, pooled) = try SDXLTextEncoders(model: model).conditioning("a photo of sks mug")
        let adapter = try TrainableAdapter.initialized(for: unet, method: .tlora, rank: 4, minRank: 2, rankAlpha: 1,
                                                       spectrum: .last, seed: 0)
        let trainer = Trainer(
            unet: unet, adapter: adapter,
            optimizer: AdamW(settings: AdamW.Settings(learningRate: 1e-3), shapes: adapter.parameters.map(\.tensor.shape)),
            examples: [example], conditioning: PromptConditioning(context: context, pooled: pooled),
            scalingFactor: vae.scalingFactor, seed: 0)
        let base = try trainer.heldOutLoss(draws: 24, withAdapter: false)
        let initial = try trainer.heldOutLoss(draws: 24)
        #expect(abs(initial - base) <= 1e-6 * base, "the initial adapter changes the UNet (ΔW must start at zero)")
        for k in 0..<60 { try trainer.step(k) }
        let trained = try trainer.heldOutLoss(draws: 24)
        print("training: held-out loss base \(base), after 60 steps \(trained)")
        #expect(trained < base)
    }
}
