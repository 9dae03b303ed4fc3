/// The parts of an SDXL pipeline; also the prefixes of canonical tensor and module names
/// (`unet.down_blocks.1…`, `text_encoder.text_model.…`).
public enum Component: String, CaseIterable, Sendable, Codable {
    case unet
    case vae
    case textEncoder = "text_encoder"
    case textEncoder2 = "text_encoder_2"

    /// Prefix of the component's tensors in the single-file (SGM) layout.
    public var singleFilePrefix: String {
        switch self {
        case .unet: return "model.diffusion_model."
        case .vae: return "first_stage_model."
        case .textEncoder: return "conditioner.embedders.0.transformer."
        case .textEncoder2: return "conditioner.embedders.1.model."
        }
    }

    /// Folder of the component in a diffusers pipeline.
    public var folderName: String { rawValue }
}
