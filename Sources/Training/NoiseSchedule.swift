import Engine

/// The DDPM forward process SDXL was trained with: scaled-linear betas (√β linear from √0.00085 to √0.012
/// over 1000 steps, squared) and ᾱ_t = Π(1 − β), computed in Float32 as diffusers' DDPMScheduler does, so
/// the noisy latents of a training step agree with the PyTorch recipe to the last bit of the schedule.
public struct NoiseSchedule: Sendable {
    public let alphasCumprod: [Float]

    public init(betaStart: Double = 0.00085, betaEnd: Double = 0.012, timesteps: Int = 1000) {
        // Python takes the roots in double precision; torch then works in Float32.
        let lo = Float(betaStart.squareRoot()), hi = Float(betaEnd.squareRoot())
        var cumulative: Float = 1
        var out: [Float] = []
        out.reserveCapacity(timesteps)
        for i in 0..<timesteps {
            // torch.linspace computes start + i·step for the first half and end − (n−1−i)·step for the
            // second half; both halves are reproduced so every β matches.
            let step = (hi - lo) / Float(timesteps - 1)
            let root = i < timesteps / 2 ? lo + Float(i) * step : hi - Float(timesteps - 1 - i) * step
            cumulative *= 1 - root * root
            out.append(cumulative)
        }
        alphasCumprod = out
    }

    public var timesteps: Int { alphasCumprod.count }

    /// x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · ε (diffusers `add_noise`), shapes equal.
    public func addNoise(_ x0: Tensor<Float>, noise: Tensor<Float>, timestep t: Int) -> Tensor<Float> {
        precondition(x0.shape == noise.shape, "addNoise: \(x0.shape) vs \(noise.shape)")
        let a = alphasCumprod[t].squareRoot(), b = (1 - alphasCumprod[t]).squareRoot()
        let out = Tensor<Float>(zeros: x0.shape)
        for i in 0..<x0.count { out.data[i] = a * x0.data[i] + b * noise.data[i] }
        return out
    }
}
