/// The four adapters of the paper's comparison (docs/method.md, "Parametrisations"): ortho or plain
/// low-rank factors, with or without the timestep rank mask.
public enum TrainingMethod: String, CaseIterable, Codable, Sendable {
    case tlora
    case vanillaTlora = "vanilla-tlora"
    case orthoLora = "ortho-lora"
    case lora

    /// P·diag(λ)·Q with frozen copies (T-LoRA, Ortho-LoRA) rather than up·down.
    public var isOrtho: Bool { self == .tlora || self == .orthoLora }
    /// Whether r(t) masks components (T-LoRA variants); the others keep every component at every t.
    public var isMasked: Bool { self == .tlora || self == .vanillaTlora }
}

/// Which singular values of the random matrix become λ (the official `--sig_type`).
public enum InitSpectrum: String, CaseIterable, Codable, Sendable {
    /// The r smallest (the paper's choice: small λ, little overfitting).
    case last
    /// The r largest.
    case principal
    /// r from the middle, starting at ⌈(n − r) / 2⌉.
    case middle
}
