/// The adapter file formats tlkit reads and writes (the `format` that `inspect` reports).
public enum AdapterFormat: String, CaseIterable, Sendable, Codable {
    /// kohya sd-scripts: `lora_unet_…`, `lora_te1_…`, `.lora_down.weight`, `.lora_up.weight`, `.alpha`.
    case kohya
    /// PEFT and current diffusers: `…lora_A.weight`, `…lora_B.weight`.
    case peft
    /// diffusers' intermediate naming: `…lora.down.weight`, `…lora_linear_layer.down.weight`.
    case diffusers
    /// Old diffusers attention processors: `…processor.to_q_lora.down.weight`.
    case attnProcs = "attn-procs"
    /// The official T-LoRA training output (`pytorch_lora_weights.safetensors` + `../logs/hparams.yml`).
    case tloraOfficial = "tlora-official"
    /// tlkit's own T-LoRA file: `<component>.<module>.tlora.<factor>` and `tlora.*` metadata.
    case tlkit
}

/// What a file is, as `inspect` reports it.
public enum FileKind: String, Sendable, Codable {
    case checkpoint
    case lora
    case tlora
    case unknown
}

/// The role of a tensor within one adapted module.
public enum FactorRole: String, Sendable, Codable, CaseIterable {
    case down, up, alpha
    case q, p, lambda, q0, p0, lambda0
    /// LyCORIS (and PEFT) LoHa and LoKr factors (Families/).
    case hadaW1a = "hada_w1_a", hadaW1b = "hada_w1_b", hadaW2a = "hada_w2_a", hadaW2b = "hada_w2_b"
    case lokrW1 = "lokr_w1", lokrW1a = "lokr_w1_a", lokrW1b = "lokr_w1_b"
    case lokrW2 = "lokr_w2", lokrW2a = "lokr_w2_a", lokrW2b = "lokr_w2_b"
    /// Tucker cores [R, R, kh, kw] of convolution modules: LoCon's `lora_mid`, LoHa's `hada_t1`/`hada_t2`,
    /// LoKr's `lokr_t2` (Families/Tucker.swift).
    case mid = "lora_mid", hadaT1 = "hada_t1", hadaT2 = "hada_t2", lokrT2 = "lokr_t2"
    /// A DoRA module's magnitude vector (LyCORIS `dora_scale`, PEFT `lora_magnitude_vector`).
    case magnitude
    /// An (IA)³ module's vector (LyCORIS `<kohya name>.weight`, PEFT `ia3_l`) and LyCORIS' axis flag
    /// `on_input` (Families/IA3.swift).
    case ia3Vector = "ia3_vector", ia3OnInput = "on_input"
}
