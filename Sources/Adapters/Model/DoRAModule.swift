/// Which norms a DoRA module's magnitude vector replaces: one per output row (PEFT, and LyCORIS'
/// default `wd_on_out`), or one per input channel (LyCORIS with `wd_on_out` off).
public enum DoRAAxis: String, Sendable, Equatable {
    case output, input
}

/// A DoRA module: a low-rank part BA and a magnitude vector m. Its merged weight is
/// W' = m / ‖W + s·BA‖ ⊙ (W + s·BA), which needs the base weight W: it is not a LoRA, and only a command
/// that has the base weight (`merge --into`) asks for it (docs/families.md, "DoRA").
public struct DoRAFactors: Sendable, Equatable {
    /// The low-rank part, with its scale s = alpha / rank.
    public var lowRank: LowRank
    /// m: `outFeatures` entries for the output axis, one per input channel for the input axis.
    public var magnitude: [Float]
    public var axis: DoRAAxis
    /// kh·kw of a convolution (1 for a linear layer): an input channel owns that many flattened columns.
    public var kernelArea: Int

    public init(lowRank: LowRank, magnitude: [Float], axis: DoRAAxis, kernelArea: Int) {
        self.lowRank = lowRank
        self.magnitude = magnitude
        self.axis = axis
        self.kernelArea = kernelArea
    }

    /// The message every command that cannot apply DoRA gives, naming the module.
    static func refusal(module: String) -> String {
        "module \(module) is a DoRA module: its ΔW rescales the adapted weight by the base weight's norms, so it depends on the base model and is not a LoRA; only `tlkit merge --into CHECKPOINT` applies it (exactly), or `tlkit convert --base CHECKPOINT --rank N` approximates it by a LoRA"
    }
}
