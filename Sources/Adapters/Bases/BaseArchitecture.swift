/// The model families an adapter can be made for (the `base` that `inspect` reports). docs/bases.md
/// says how each is recognised and lists its module names.
public enum BaseArchitecture: String, CaseIterable, Sendable, Codable {
    case sd1, sd2, sdxl, sd3, flux1

    /// How messages name it.
    public var displayName: String {
        switch self {
        case .sd1: return "SD 1.x"
        case .sd2: return "SD 2.x"
        case .sdxl: return "SDXL"
        case .sd3: return "SD3/3.5"
        case .flux1: return "FLUX.1"
        }
    }

    /// What kohya's `ss_base_model_version` says for this base (written into kohya outputs).
    var kohyaVersion: String {
        switch self {
        case .sd1: return "sd_v1"
        case .sd2: return "sd_v2"
        case .sdxl: return "sdxl_base_v1-0"
        case .sd3: return "sd3"
        case .flux1: return "flux1"
        }
    }

    /// ModelSpec's `architecture` of a LoRA for this base, when the input names none.
    var modelSpecArchitecture: String {
        switch self {
        case .sd1: return "stable-diffusion-v1/lora"
        case .sd2: return "stable-diffusion-v2-512/lora"
        case .sdxl: return "stable-diffusion-xl-v1-base/lora"
        case .sd3: return "stable-diffusion-3-medium/lora"
        case .flux1: return "flux-1-dev/lora"
        }
    }

    var modelSpecImplementation: String {
        self == .flux1 ? "https://github.com/black-forest-labs/flux" : "https://github.com/Stability-AI/generative-models"
    }

    /// The resolution the base model was trained at, for ModelSpec.
    var resolution: String {
        switch self {
        case .sd1: return "512x512"
        case .sd2: return "768x768"
        default: return "1024x1024"
        }
    }
}

/// What the file's tensors and metadata say about its base model.
public struct BaseVerdict: Sendable, Equatable {
    /// Nil when nothing decides it; `note` then says why.
    public var base: BaseArchitecture?
    /// A model trained from SDXL that metadata names (`pony`, `illustrious`, `noobai`).
    public var derivative: String?
    /// What decided the base (for messages), e.g. "cross-attention width 768".
    public var evidence: String?
    /// Why the base is unknown, or where metadata disagrees with the tensors.
    public var note: String?

    public init(base: BaseArchitecture? = nil, derivative: String? = nil, evidence: String? = nil, note: String? = nil) {
        self.base = base
        self.derivative = derivative
        self.evidence = evidence
        self.note = note
    }

    /// "SD 1.x (cross-attention width 768)".
    public var described: String {
        guard let base else { return "an unknown base model" }
        return base.displayName + (evidence.map { " (\($0))" } ?? "")
    }
}
