import Engine
import Foundation

/// diffusers' `EulerDiscreteScheduler` for epsilon prediction with s_churn = 0 (no noise is added):
/// the sampler SDXL's pipeline uses.
///
/// Values are computed as diffusers computes them — betas and ᾱ in torch Float32 (the cumulative
/// product accumulated in Float64, as torch does on the CPU), timesteps and the sigma interpolation in
/// NumPy Float64, then rounded to Float32 — so timesteps are bitwise equal and sigmas equal to Float32
/// rounding.
///
/// With n steps: `timesteps` [n] (the DDPM timesteps the UNet receives, e.g. 961, 921, …, 1 for 25
/// leading steps), `sigmas` [n + 1] (σ of each timestep, then 0).
public struct EulerDiscreteScheduler: Sendable {
    public let config: SchedulerConfig
    /// ᾱ_t for t = 0 … T − 1 [T].
    public let alphasCumprod: [Float]
    public let timesteps: [Float]
    public let sigmas: [Float]

    public init(config: SchedulerConfig = .sdxl, steps: Int) throws {
        let T = config.trainTimesteps
        guard steps >= 1, steps <= T else {
            throw SamplingError.badInput("the number of steps must be between 1 and \(T) (got \(steps))")
        }
        self.config = config
        alphasCumprod = Self.alphasCumprod(config)
        timesteps = Self.timesteps(config, steps: steps)
        // σ_t = sqrt((1 − ᾱ_t) / ᾱ_t) in Float32, interpolated at the (possibly fractional) timesteps in Float64.
        let trainSigmas = alphasCumprod.map { a -> Float in ((1 - a) / a).squareRoot() }
        sigmas = timesteps.map { Float(Self.interpolate(Double($0), trainSigmas)) } + [0]
    }

    /// The factor diffusers' pipeline multiplies the initial noise by: sqrt(σ_max² + 1) for leading and
    /// the default spacing, σ_max for linspace and trailing.
    public var initNoiseSigma: Float {
        let maxSigma = sigmas.max() ?? 0
        switch config.spacing {
        case .linspace, .trailing: return maxSigma
        case .leading: return (maxSigma * maxSigma + 1).squareRoot()
        }
    }

    /// x / sqrt(σ_i² + 1), the UNet input at step `i`; x [N…] → new tensor of the same shape.
    public func scaleModelInput(_ x: Tensor<Float>, step i: Int) -> Tensor<Float> {
        let sigma = sigmas[i]
        let divisor = (sigma * sigma + 1).squareRoot()
        let y = Tensor<Float>(zeros: x.shape)
        let xp = x.data, yp = y.data
        Parallel.forEach(x.count, grain: 16384) { r in for j in r { yp[j] = xp[j] / divisor } }
        return y
    }

    /// One Euler step from σ_i to σ_{i+1} for the predicted noise ε:
    /// x̂0 = x − σ_i ε, d = (x − x̂0) / σ_i, x' = x + d (σ_{i+1} − σ_i), each rounded to Float32 as torch
    /// does. sample, noise [N…] → the next sample, same shape.
    public func step(noise eps: Tensor<Float>, sample x: Tensor<Float>, step i: Int) -> Tensor<Float> {
        precondition(eps.shape == x.shape, "Euler step: noise \(eps.shape) vs sample \(x.shape)")
        let sigma = sigmas[i], dt = sigmas[i + 1] - sigma
        let y = Tensor<Float>(zeros: x.shape)
        let ep = eps.data, xp = x.data, yp = y.data
        Parallel.forEach(x.count, grain: 16384) { r in
            for j in r {
                let predicted = xp[j] - sigma * ep[j]
                let derivative = (xp[j] - predicted) / sigma
                yp[j] = xp[j] + derivative * dt
            }
        }
        return y
    }

    // MARK: diffusers' arithmetic

    /// betas = linspace(√β_start, √β_end, T) ² (torch Float32), ᾱ = cumprod(1 − β).
    static func alphasCumprod(_ config: SchedulerConfig) -> [Float] {
        let T = config.trainTimesteps
        let start = Float(config.betaStart.squareRoot()), end = Float(config.betaEnd.squareRoot())
        let step = (end - start) / Float(T - 1)
        var product = 1.0
        return (0..<T).map { i -> Float in
            // torch's linspace: from the start for the first half, from the end for the second.
            let root = i < T / 2 ? start + step * Float(i) : end - step * Float(T - i - 1)
            let beta = root * root
            product *= Double(1 - beta)
            return Float(product)
        }
    }

    static func timesteps(_ config: SchedulerConfig, steps n: Int) -> [Float] {
        let T = config.trainTimesteps
        switch config.spacing {
        case .leading:
            let ratio = T / n
            return (0..<n).reversed().map { Float($0 * ratio + config.stepsOffset) }
        case .trailing:
            // np.arange(T, 0, −T/n).round() − 1
            let ratio = Double(T) / Double(n)
            var values: [Float] = []
            var k = 0
            while Double(T) - Double(k) * ratio > 0 {
                values.append(Float((Double(T) - Double(k) * ratio).rounded(.toNearestOrEven) - 1))
                k += 1
            }
            return values
        case .linspace:
            // np.linspace(0, T − 1, n, dtype=float32)[::-1]: Float64 arithmetic, the end point exact.
            let stop = Double(T - 1)
            let delta = n > 1 ? stop / Double(n - 1) : 0
            let values = (0..<n).map { i in i == n - 1 && n > 1 ? stop : Double(i) * delta }
            return values.reversed().map { Float($0) }
        }
    }

    /// np.interp(x, arange(len(fp)), fp) in Float64.
    static func interpolate(_ x: Double, _ fp: [Float]) -> Double {
        let last = fp.count - 1
        if !(x > 0) { return Double(fp[0]) }  // NaN too: Int(NaN) below would trap
        if x >= Double(last) { return Double(fp[last]) }
        let j = Int(x.rounded(.down))
        let slope = Double(fp[j + 1]) - Double(fp[j])
        return slope * (x - Double(j)) + Double(fp[j])
    }
}
