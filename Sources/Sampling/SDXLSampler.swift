import Engine
import Foundation
import UNet

/// SDXL denoising as diffusers' `StableDiffusionXLPipeline` runs it with `EulerDiscreteScheduler`:
/// classifier-free guidance with the uncond and cond halves in one UNet batch, time ids
/// [h, w, 0, 0, h, w] for both halves, masked adapters hooked at every step with the mask of that
/// step's timestep. The result is the final latents, as the pipeline returns them with
/// `output_type="latent"` (decoding is a separate step).
public struct SDXLSampler {
    public let unet: SDXLUNet
    public let scheduler: EulerDiscreteScheduler
    public let guidance: Float

    /// Progress after each step: index (0-based), step count, the step's timestep, seconds it took.
    public struct Progress: Sendable {
        public let step: Int
        public let steps: Int
        public let timestep: Float
        public let seconds: Double
    }

    public init(unet: SDXLUNet, scheduler: EulerDiscreteScheduler, guidance: Float = 5) {
        self.unet = unet
        self.scheduler = scheduler
        self.guidance = guidance
    }

    /// Denoises `noise` [N, C, h, w] — the initial latents exactly as diffusers' `latents=` takes them
    /// (multiplied by `initNoiseSigma` here) — for an image of `height` × `width` pixels, conditioned on
    /// `conditioning` (shared by the N images). Returns the final latents [N, C, h, w].
    public func sample(
        noise: Tensor<Float>, conditioning: Conditioning, height: Int, width: Int,
        adapters: [UNetAdapter] = [], progress: (Progress) -> Void = { _ in }
    ) throws -> Tensor<Float> {
        guard noise.rank == 4, noise.shape[0] >= 1 else {
            throw SamplingError.badInput("initial latents \(noise.shape): want [N, C, h, w]")
        }
        let n = noise.shape[0]
        let batch = Self.guidanceBatch(conditioning, images: n, height: height, width: width)
        var latents = Self.scaled(noise, by: scheduler.initNoiseSigma)
        let steps = scheduler.timesteps.count
        for (i, t) in scheduler.timesteps.enumerated() {
            let start = Date()
            // [uncond; cond] share the latents; the scheduler's input scaling is elementwise.
            let doubled = Self.repeated(latents, times: 2)
            let input = scheduler.scaleModelInput(doubled, step: i)
            let eps = try unet.forward(latents: input, timestep: t, context: batch.context, textEmbeds: batch.pooled,
                                       timeIds: batch.timeIds, adapters: adapters)
            let guided = Self.guide(eps, scale: guidance)
            latents = scheduler.step(noise: guided, sample: latents, step: i)
            progress(Progress(step: i, steps: steps, timestep: t, seconds: Date().timeIntervalSince(start)))
        }
        return latents
    }

    /// The UNet's conditioning for 2N rows, negative first (diffusers' order):
    /// context [2N, L, D], pooled [2N, P], time ids [2N, 6] = [h, w, 0, 0, h, w] (original size, crop,
    /// target size).
    static func guidanceBatch(_ c: Conditioning, images n: Int, height: Int, width: Int)
        -> (context: Tensor<Float>, pooled: Tensor<Float>, timeIds: Tensor<Float>) {
        let rows = Array(repeating: c.negativePromptEmbeds, count: n) + Array(repeating: c.promptEmbeds, count: n)
        let pooledRows = Array(repeating: c.negativePooled, count: n) + Array(repeating: c.pooled, count: n)
        let ids: [Float] = [Float(height), Float(width), 0, 0, Float(height), Float(width)]
        return (stacked(rows), stacked(pooledRows),
                Tensor(shape: [2 * n, 6], values: Array((0..<2 * n).map { _ in ids }.joined())))
    }

    /// Tensors of one shape S → [k, S…].
    static func stacked(_ parts: [Tensor<Float>]) -> Tensor<Float> {
        let size = parts[0].count
        let out = Tensor<Float>(zeros: [parts.count] + parts[0].shape)
        for (k, p) in parts.enumerated() { (out.data + k * size).update(from: p.data, count: size) }
        return out
    }

    /// x [N, …] → [k·N, …] (x repeated k times along the batch).
    static func repeated(_ x: Tensor<Float>, times k: Int) -> Tensor<Float> {
        let out = Tensor<Float>(zeros: [k * x.shape[0]] + x.shape.dropFirst())
        for j in 0..<k { (out.data + j * x.count).update(from: x.data, count: x.count) }
        return out
    }

    static func scaled(_ x: Tensor<Float>, by s: Float) -> Tensor<Float> {
        let out = Tensor<Float>(zeros: x.shape)
        for i in 0..<x.count { out.data[i] = x.data[i] * s }
        return out
    }

    /// eps [2N, …] = [uncond; cond] → uncond + g · (cond − uncond) [N, …], in Float32 as torch does.
    static func guide(_ eps: Tensor<Float>, scale g: Float) -> Tensor<Float> {
        let half = eps.count / 2
        let out = Tensor<Float>(zeros: [eps.shape[0] / 2] + eps.shape.dropFirst())
        let u = eps.data, c = eps.data + half, o = out.data
        for i in 0..<half { o[i] = u[i] + g * (c[i] - u[i]) }
        return out
    }
}
