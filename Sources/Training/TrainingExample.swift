import Engine

/// One training image as the step loop needs it: its VAE posterior (encoded once; each step draws
/// mean + σ·ε, docs/contract.md, "Training") and its SDXL micro-conditioning.
public struct TrainingExample: Sendable {
    /// Posterior mean and standard deviation [1, 4, h, w], before the VAE scaling factor.
    public let mean: Tensor<Float>
    public let std: Tensor<Float>
    /// `[crop, crop, 0, 0, res, res]` with crop = the side of the source image's center square (the official
    /// trainer's `original_size`), [1, 6].
    public let timeIds: Tensor<Float>

    public init(mean: Tensor<Float>, std: Tensor<Float>, timeIds: Tensor<Float>) {
        precondition(mean.shape == std.shape && timeIds.shape == [1, 6], "TrainingExample: shapes")
        self.mean = mean
        self.std = std
        self.timeIds = timeIds
    }
}

/// The prompt's conditioning, computed once: hidden states [1, 77, 2048] and pooled embedding [1, 1280]
/// for SDXL (the fixture model's widths are smaller).
public struct PromptConditioning: Sendable {
    public let context: Tensor<Float>
    public let pooled: Tensor<Float>

    public init(context: Tensor<Float>, pooled: Tensor<Float>) {
        self.context = context
        self.pooled = pooled
    }
}
