/// The four adapters of the paper's comparison (docs/method.md, "Parametrisations"): ortho or plain
/// low-rank factors, with or without the timestep rank mask. Raw values are the names files carry
/// (`tlora.method`) and the commands accept.
public enum AdapterMethod: String, CaseIterable, Codable, Sendable {
    case tlora
    case vanillaTlora = "vanilla-tlora"
    case orthoLora = "ortho-lora"
    case lora

    /// P·diag(λ)·Q with frozen copies (T-LoRA, Ortho-LoRA) rather than up·down.
    public var isOrtho: Bool { self == .tlora || self == .orthoLora }
    /// Whether r(t) masks components (T-LoRA variants); the others keep every component at every t.
    public var isMasked: Bool { self == .tlora || self == .vanillaTlora }

    public init(masked: Bool, ortho: Bool) {
        switch (masked, ortho) {
        case (true, true): self = .tlora
        case (true, false): self = .vanillaTlora
        case (false, true): self = .orthoLora
        case (false, false): self = .lora
        }
    }

    /// The method a scheduled adapter has when its file does not name one: a T-LoRA, ortho when its
    /// modules are.
    public static func assumedScheduled(ortho: Bool) -> AdapterMethod { AdapterMethod(masked: true, ortho: ortho) }

    /// The official trainer's `trainer_class` / `trainer_type` pair (docs/method.md, "hparams.yml").
    public var officialTrainer: (trainerClass: String, trainerType: String) {
        (isMasked ? "sdxl_tlora" : "sdxl_lora", isOrtho ? "ortho_lora" : "lora")
    }

    public init?(trainerClass: String?, trainerType: String?) {
        guard let found = AdapterMethod.allCases.first(where: { $0.officialTrainer == (trainerClass ?? "", trainerType ?? "") }) else {
            return nil
        }
        self = found
    }

    /// The names, for messages.
    static let allNames = allCases.map(\.rawValue).joined(separator: ", ")
}
