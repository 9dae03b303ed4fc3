import Engine
import SDXL

/// SDXL's VAE (diffusers AutoencoderKL), inference only, Float32 (the SDXL VAE overflows in fp16), or with
/// its wide convolutions in bf16 (same range as Float32) when the source asks for it.
///
/// Scaling is the caller's side, as in diffusers pipelines: UNet latents = `encode(…).sample(noise:)` ·
/// `scalingFactor`, and images = `decode(latents: unetLatents / scalingFactor)`.
/// Images are processed one at a time, so memory is that of one image whatever the batch.
public final class AutoencoderKL: @unchecked Sendable {
    public let config: AutoencoderKLConfig
    let encoder: VAEEncoder
    let decoder: VAEDecoder

    /// Builds from any weight source; the configuration is inferred (config.json, shapes) unless given.
    public init(source: VAEWeightSource, config: AutoencoderKLConfig? = nil) throws {
        let config = try config ?? AutoencoderKLConfig.infer(source)
        self.config = config
        encoder = try VAEEncoder(source, config: config)
        decoder = try VAEDecoder(source, config: config)
    }

    /// The VAE of an SDXL checkpoint (single file or diffusers folder).
    public convenience init(model: SDXLModel, config: AutoencoderKLConfig? = nil, precision: Precision = .fp32) throws {
        var source = VAEWeightSource(model: model)
        source.precision = precision
        try self.init(source: source, config: config)
    }

    /// A standalone VAE (`--vae PATH`): a diffusers `vae` folder, a pipeline folder, or a safetensors file
    /// in diffusers or LDM naming.
    public convenience init(path: String, config: AutoencoderKLConfig? = nil, precision: Precision = .fp32) throws {
        var source = try VAEWeightSource(path: path)
        source.precision = precision
        try self.init(source: source, config: config)
    }

    /// Multiply the posterior sample by this for the UNet; divide UNet latents by it before `decode`.
    public var scalingFactor: Float { config.scalingFactor }

    /// Image pixels per latent pixel along each side (8 for SDXL).
    public var downscaleFactor: Int { config.downscaleFactor }

    /// The posterior of images [B, Cin, H, W] in [−1, 1], H and W multiples of `downscaleFactor`;
    /// its tensors are [B, latent, H/f, W/f].
    public func encode(images: Tensor<Float>) throws -> VAEPosterior {
        let f = downscaleFactor
        guard images.rank == 4, images.shape[1] == config.inChannels else {
            throw VAEError.badInput("images must be [B, \(config.inChannels), H, W], got \(images.shape)")
        }
        let (b, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        guard b > 0 else { throw VAEError.badInput("empty batch \(images.shape)") }
        guard h > 0, w > 0, h % f == 0, w % f == 0 else {
            throw VAEError.badInput("image size \(h)×\(w) must be a positive multiple of \(f) on each side")
        }
        let moments = Tensor<Float>(zeros: [b, 2 * config.latentChannels, h / f, w / f])
        for i in 0..<b {
            let one = encoder(images.batch(i).reshaped([1, config.inChannels, h, w]))
            moments.batch(i).copy(from: one)
        }
        return try VAEPosterior(moments: moments)
    }

    /// Images [B, Cout, f·h, f·w] (about [−1, 1]) from latents [B, latent, h, w] already divided by
    /// `scalingFactor`.
    public func decode(latents: Tensor<Float>) throws -> Tensor<Float> {
        let f = downscaleFactor
        guard latents.rank == 4, latents.shape[1] == config.latentChannels else {
            throw VAEError.badInput("latents must be [B, \(config.latentChannels), h, w], got \(latents.shape)")
        }
        let (b, h, w) = (latents.shape[0], latents.shape[2], latents.shape[3])
        guard b > 0, h > 0, w > 0 else { throw VAEError.badInput("empty latents \(latents.shape)") }
        let images = Tensor<Float>(zeros: [b, config.outChannels, f * h, f * w])
        for i in 0..<b {
            let one = decoder(latents.batch(i).reshaped([1, config.latentChannels, h, w]))
            images.batch(i).copy(from: one)
        }
        return images
    }
}
