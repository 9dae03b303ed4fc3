/// What trainers write about the base model: kohya's `ss_base_model_version` and `ss_sd_model_name`,
/// and ModelSpec's `modelspec.architecture`.
enum BaseMetadata {
    /// Value prefixes of each key, first match wins (kohya: `sd_v1`, `sd_v2_v`, `sdxl_base_v1-0`, `sd3…`,
    /// `flux1`; ModelSpec: `stable-diffusion-v1/lora`, `stable-diffusion-xl-v1-base/lora`, `flux-1-dev/lora`, …).
    static let prefixes: [(key: String, prefix: String, base: BaseArchitecture)] = [
        ("ss_base_model_version", "sdxl", .sdxl), ("ss_base_model_version", "sd_v1", .sd1),
        ("ss_base_model_version", "sd_v2", .sd2), ("ss_base_model_version", "sd3", .sd3),
        ("ss_base_model_version", "flux", .flux1),
        ("modelspec.architecture", "stable-diffusion-xl", .sdxl), ("modelspec.architecture", "stable-diffusion-v1", .sd1),
        ("modelspec.architecture", "stable-diffusion-v2", .sd2), ("modelspec.architecture", "stable-diffusion-3", .sd3),
        ("modelspec.architecture", "flux-1", .flux1), ("modelspec.architecture", "flux.1", .flux1),
    ]

    /// The base the metadata names, with the entry that names it.
    static func base(_ metadata: [String: String]) -> (base: BaseArchitecture, entry: String)? {
        for (key, prefix, base) in prefixes {
            if let value = metadata[key], value.lowercased().hasPrefix(prefix) { return (base, "\(key) \(value)") }
        }
        return nil
    }

    /// Models trained from SDXL, by a word their names contain (NoobAI before Illustrious, which it is
    /// trained from, though its names do not say so).
    static let derivatives: [(word: String, name: String)] = [("noobai", "noobai"), ("illustrious", "illustrious"), ("pony", "pony")]
    static let derivativeKeys = ["ss_base_model_version", "modelspec.architecture", "ss_sd_model_name"]

    /// The SDXL derivative the metadata names, if any.
    static func derivative(_ metadata: [String: String]) -> String? {
        for key in derivativeKeys {
            guard let value = metadata[key]?.lowercased() else { continue }
            if let match = derivatives.first(where: { AdapterKeys.bytes(of: value, contain: $0.word) }) { return match.name }
        }
        return nil
    }
}
