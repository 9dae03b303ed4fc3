import Foundation

/// Sinusoidal timestep embedding as diffusers' `get_timestep_embedding`.
///
/// Shapes: timesteps [N] → [N, dim]. With half = dim / 2:
/// exponent_i = −ln(maxPeriod) · i / (half − downscaleFreqShift), freq_i = exp(exponent_i),
/// arg = scale · t · freq, emb = [sin(arg), cos(arg)], flipped to [cos, sin] when
/// `flipSinToCos`; an odd `dim` gets a zero last column. Every step is rounded
/// to Float as torch does (SDXL's defaults: flip true, shift 0), so the values
/// match the reference to Float precision even when T is Double.
/// No backward: timesteps are not trained.
public enum TimestepEmbedding {
    public static func forward<T: Scalar>(
        timesteps: [Float], dim: Int, flipSinToCos: Bool = true, downscaleFreqShift: Float = 0,
        scale: Float = 1, maxPeriod: Float = 10000, as: T.Type = T.self
    ) -> Tensor<T> {
        precondition(dim >= 2, "TimestepEmbedding: dim \(dim)")
        let half = dim / 2
        // −math.log(max_period) is a Python double, rounded to Float when it meets the tensor.
        let logPeriod = Float(-Foundation.log(Double(maxPeriod)))
        let freqs = (0..<half).map { i in Float.exp(logPeriod * Float(i) / (Float(half) - downscaleFreqShift)) }
        let out = Tensor<T>(zeros: [timesteps.count, dim])
        for (n, t) in timesteps.enumerated() {
            let row = out.data + n * dim
            for i in 0..<half {
                let arg = scale * (t * freqs[i])
                let (first, second) = flipSinToCos ? (Float.cos(arg), Float.sin(arg)) : (Float.sin(arg), Float.cos(arg))
                row[i] = T(first)
                row[half + i] = T(second)
            }
        }
        return out
    }
}
