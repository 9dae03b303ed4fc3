import Engine
import Foundation

/// The encoder's diagonal Gaussian over latents (diffusers DiagonalGaussianDistribution).
///
/// It is deterministic given the image, so training encodes each image once and draws
/// `sample(noise:)` = mean + std · ε with fresh ε each step; the caller then multiplies by
/// `AutoencoderKL.scalingFactor` to get the UNet's latents.
public struct VAEPosterior: Sendable {
    /// [B, L, h, w]
    public let mean: Tensor<Float>
    /// log σ², clamped to [−30, 20] as diffusers does [B, L, h, w].
    public let logvar: Tensor<Float>
    /// σ = exp(logvar / 2) [B, L, h, w].
    public let std: Tensor<Float>

    /// Splits the encoder's moments [B, 2L, h, w] into mean (first L channels) and log-variance.
    public init(moments: Tensor<Float>) throws {
        guard moments.rank == 4, moments.shape[1] % 2 == 0, moments.shape[1] > 0 else {
            throw VAEError.badInput("posterior moments must be [B, 2·L, h, w], got \(moments.shape)")
        }
        let (b, l, s) = (moments.shape[0], moments.shape[1] / 2, moments.shape[2] * moments.shape[3])
        let shape = [b, l, moments.shape[2], moments.shape[3]]
        mean = Tensor(zeros: shape)
        logvar = Tensor(zeros: shape)
        std = Tensor(zeros: shape)
        for i in 0..<b {
            let src = moments.data + i * 2 * l * s, at = i * l * s
            (mean.data + at).update(from: src, count: l * s)
            for j in 0..<(l * s) {
                let lv = min(max(src[l * s + j], -30), 20)
                logvar[at + j] = lv
                std[at + j] = exp(0.5 * lv)
            }
        }
    }

    /// mean + std · noise, noise [B, L, h, w] standard normal.
    public func sample(noise: Tensor<Float>) throws -> Tensor<Float> {
        guard noise.shape == mean.shape else {
            throw VAEError.badInput("noise shape \(noise.shape) does not match the posterior \(mean.shape)")
        }
        return Tensor(shape: mean.shape) { mean[$0] + std[$0] * noise[$0] }
    }
}
