import SDXL

/// The checkpoint a conversion computes against (`convert --base`): DoRA modules rescale its weights
/// (each one's ΔW = W' − W, compressed to a LoRA, `DoRA.swift`), and a LyCORIS T-LoRA's frozen part is
/// recomputed from them (`LycorisTLoRA.swift`). One checkpoint, opened once, serves both.
public struct BaseWeights: Sendable {
    public let model: SDXLModel
    public let policy: NonFinitePolicy

    public init(model: SDXLModel, policy: NonFinitePolicy = .refuse) {
        self.model = model
        self.policy = policy
    }
}
