import Engine
import UNet

/// The step loop of the training recipe (docs/method.md, "Training recipe"): per step, image k mod n, a
/// uniform integer t, a fresh posterior sample and fresh noise (all drawn from counter-based streams keyed
/// on (seed, step), so any step can be replayed), the ε-prediction MSE, backward into the adapter, one
/// AdamW update.
public final class Trainer {
    public let unet: SDXLUNet
    public let adapter: TrainableAdapter
    public let optimizer: AdamW
    public let examples: [TrainingExample]
    public let conditioning: PromptConditioning
    public let schedule: NoiseSchedule
    public let scalingFactor: Float
    public let seed: UInt64
    /// Checked between the phases of a step; when it returns true the step in flight is abandoned
    /// (nothing of it is applied) and `step` throws `TrainingError.interrupted`.
    public var shouldStop: () -> Bool = { false }
    /// Activation recomputation (see `SDXLUNet.forwardRecording`): same gradients, less memory, more time.
    /// Chosen where memory is short, it also keeps no second copy of the convolution weights for the backward
    /// (`SDXLUNet.keepsBackwardWeights`, about 0.6 GB for SDXL) and fewer freed tensor buffers for reuse
    /// (`TensorMemory.leanLimit`; at 1024 px each saves about 0.6 GB at the step's peak).
    public var recompute = false {
        didSet {
            unet.keepsBackwardWeights = !recompute
            TensorMemory.cachedLimit = recompute ? TensorMemory.leanLimit : TensorMemory.defaultLimit
        }
    }

    public init(unet: SDXLUNet, adapter: TrainableAdapter, optimizer: AdamW, examples: [TrainingExample],
                conditioning: PromptConditioning, scalingFactor: Float, seed: UInt64, schedule: NoiseSchedule = NoiseSchedule()) {
        precondition(!examples.isEmpty, "Trainer needs at least one example")
        self.unet = unet
        self.adapter = adapter
        self.optimizer = optimizer
        self.examples = examples
        self.conditioning = conditioning
        self.schedule = schedule
        self.scalingFactor = scalingFactor
        self.seed = seed
    }

    /// What step `k` (0-based) trains on; a pure function of (seed, k).
    public struct StepInputs {
        public let example: Int
        public let timestep: Int
        public let latents: Tensor<Float>
        public let noise: Tensor<Float>
    }

    /// `heldOut` draws from streams training never uses (for evaluation).
    public func inputs(step k: Int, heldOut: Bool = false) -> StepInputs {
        let index = k % examples.count
        let example = examples[index]
        let (tPurpose, posteriorPurpose, noisePurpose): (RandomStream.Purpose, RandomStream.Purpose, RandomStream.Purpose) =
            heldOut ? (.heldOutTimestep, .heldOutPosterior, .heldOutNoise) : (.timestep, .posterior, .noise)
        let t = RandomStream(seed: seed, purpose: tPurpose, step: k).integer(below: schedule.timesteps)
        let eps = RandomStream(seed: seed, purpose: posteriorPurpose, step: k).gaussians(example.mean.count)
        let latents = Tensor<Float>(shape: example.mean.shape) { i in
            (example.mean.data[i] + example.std.data[i] * Float(eps[i])) * self.scalingFactor
        }
        let n = RandomStream(seed: seed, purpose: noisePurpose, step: k).gaussians(example.mean.count)
        return StepInputs(example: index, timestep: t, latents: latents, noise: Tensor(shape: example.mean.shape) { Float(n[$0]) })
    }

    /// Runs step `k` and returns its loss (before the update). Throws `interrupted` without applying anything
    /// when `shouldStop` turns true during the step.
    @discardableResult
    public func step(_ k: Int) throws -> Double {
        let x = inputs(step: k)
        let (loss, grads) = try lossAndGradients(x)
        if shouldStop() { throw TrainingError.interrupted }
        guard loss.isFinite else { throw TrainingError.numericFailure("the loss of step \(k + 1) is \(loss) (t = \(x.timestep))") }
        optimizer.update(adapter.parameters.map(\.tensor), gradients: try adapter.gradients(grads))
        return loss
    }

    /// The recipe's loss at given inputs and its gradients with respect to every trainable factor.
    public func lossAndGradients(_ x: StepInputs) throws -> (Double, UNetGradients) {
        let noisy = schedule.addNoise(x.latents, noise: x.noise, timestep: x.timestep)
        let example = examples[x.example]
        let prediction = try unet.forwardRecording(
            latents: noisy, timestep: Float(x.timestep), context: conditioning.context,
            textEmbeds: conditioning.pooled, timeIds: example.timeIds, adapter: adapter.unetAdapter, recompute: recompute)
        if shouldStop() { throw TrainingError.interrupted }
        let loss = Loss.mse(prediction, x.noise)
        let dPrediction = Tensor<Float>(zeros: prediction.shape)
        Loss.mseBackward(prediction, x.noise, da: dPrediction)
        return (loss, unet.backward(outputGradient: dPrediction))
    }

    /// Mean ε-prediction loss over held-out (noise, timestep) draws that training never uses, with the
    /// adapter (or without it, `withAdapter: false`, which is the base model's loss).
    public func heldOutLoss(draws: Int, withAdapter: Bool = true) throws -> Double {
        var total = 0.0
        for d in 0..<draws {
            let x = inputs(step: d, heldOut: true)
            let example = examples[x.example]
            let noisy = schedule.addNoise(x.latents, noise: x.noise, timestep: x.timestep)
            let prediction = try unet.forward(
                latents: noisy, timestep: Float(x.timestep), context: conditioning.context,
                textEmbeds: conditioning.pooled, timeIds: example.timeIds, adapter: withAdapter ? adapter.unetAdapter : nil)
            total += Loss.mse(prediction, x.noise)
        }
        return total / Double(draws)
    }
}
