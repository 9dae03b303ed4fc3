import Engine
import Foundation
import SDXL
import TextEncoders
import UNet
import VAE

/// One sampling job, the whole recipe: adapters applied (text-encoder modules before the prompt is encoded,
/// unmasked UNet modules merged into the Float32 weights), then the UNet's precision switched, then the
/// guided Euler denoising with masked adapters per step, then the VAE decode (`decode`). Events out; the caller
/// reads files and writes images.
public struct SamplingRun {
    /// Where the prompt's conditioning comes from.
    public enum Prompt: Sendable {
        /// Encoded by the model's text encoders; nil negative gives zero negative embeddings.
        case text(String, negative: String?)
        /// diffusers' four embedding tensors in a safetensors file (`Conditioning.fileKeys`).
        case embeddings(file: String)
    }

    /// What the run reports, in order.
    public enum Event {
        case adapter(AdapterStack.Report)
        /// The precision the UNet denoises in (set after the merges).
        case precision(Precision)
        case step(SDXLSampler.Progress)
        case note(String)
    }

    public let model: SDXLModel
    public let unet: SDXLUNet

    /// Loads the UNet (the longest load, so a bad model fails before anything else is read), in Float32 or
    /// straight into bf16 block by block (half the peak memory) when no adapter will be merged into it.
    public init(model: SDXLModel, loadingIn precision: Precision = .fp32) throws {
        self.model = model
        unet = try SDXLUNet(model: model, precision: precision)
    }

    /// The UNet's input channels (SDXL: 4), read from conv_in.
    public var inChannels: Int { model.shape(.unet, "conv_in.weight")?[1] ?? 4 }

    /// Image sides must be multiples of this many pixels: the UNet halves the latents once per level below the top.
    public var sizeMultiple: Int { 8 << (unet.config.structure.levels - 1) }

    /// The initial noise of a seed, as torch.randn with torch.Generator("cpu").manual_seed(seed).
    public static func noise(seed: UInt64, shape: [Int]) throws -> Tensor<Float> {
        var generator = TorchRandom(seed: seed)
        return Tensor(shape: shape, values: try generator.normals(count: shape.reduce(1, *)))
    }

    /// Denoises `noise` [N, C, h, w] (diffusers' `latents=`) in `steps` steps; returns the final latents
    /// [N, C, h, w] as diffusers returns them with `output_type="latent"` (`decode` turns them into images).
    public func run(noise: Tensor<Float>, prompt: Prompt, adapters: [AdapterStack.Entry], strict: Bool = false,
                    scheduler config: SchedulerConfig = .sdxl, steps: Int, guidance: Float, precision: Precision,
                    events: (Event) -> Void = { _ in }) throws -> Tensor<Float> {
        let (h, w) = (noise.shape[2] * 8, noise.shape[3] * 8)
        let (stack, conditioning) = try applyAndEncode(adapters, prompt: prompt, strict: strict)
        for report in stack.reports { events(.adapter(report)) }
        // After the merges: unmasked adapters are summed into the Float32 weights, then rounded once.
        unet.use(precision)
        events(.precision(precision))
        let scheduler = try EulerDiscreteScheduler(config: config, steps: steps)
        let sampler = SDXLSampler(unet: unet, scheduler: scheduler, guidance: guidance)
        OperationProfile.reset()
        let final = try sampler.sample(noise: noise, conditioning: conditioning, height: h, width: w,
                                       adapters: stack.hooked) { events(.step($0)) }
        if OperationProfile.isEnabled { events(.note("operation profile of the \(steps) denoising steps:\n\(OperationProfile.report())")) }
        return final
    }

    /// Applies the adapters (text-encoder modules first, so they act on the prompt), then encodes the
    /// prompt; the text encoders are released before sampling starts.
    func applyAndEncode(_ entries: [AdapterStack.Entry], prompt: Prompt, strict: Bool) throws -> (AdapterStack, Conditioning) {
        switch prompt {
        case let .embeddings(file):
            let stack = try AdapterStack(entries, unet: unet, textEncoders: nil, strict: strict)
            return (stack, try Conditioning(file: file))
        case let .text(text, negative):
            let encoders = try SDXLTextEncoders(model: model)
            let stack = try AdapterStack(entries, unet: unet, textEncoders: encoders, strict: strict)
            return (stack, try Conditioning(encoders: encoders, prompt: text, negative: negative))
        }
    }

    /// Final latents [N, 4, h, w] → images [N, 3, 8h, 8w] in about [−1, 1], as diffusers'
    /// `vae.decode(latents / vae.config.scaling_factor).sample`.
    public static func decode(_ latents: Tensor<Float>, vae: AutoencoderKL) throws -> Tensor<Float> {
        let scaled = Tensor<Float>(zeros: latents.shape)
        let s = vae.scalingFactor
        for i in 0..<latents.count { scaled.data[i] = latents.data[i] / s }
        // Each decoder layer runs once: keeping freed activations would only add to the peak (1024 px: 8.1 → 7.6 GB).
        let kept = TensorMemory.cachedLimit
        TensorMemory.cachedLimit = 512 << 20
        defer { TensorMemory.cachedLimit = kept }
        return try vae.decode(latents: scaled)
    }
}
