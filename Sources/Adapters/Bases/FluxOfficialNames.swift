import SafeTensors

/// Module names of the official T-LoRA repository's FLUX.1 checkpoints (`checkpoint-N/lora.pt`, docs/families.md,
/// "The official FLUX.1 T-LoRA"): `<attention processor>.<layer>_lora.{down,up}.weight`, where the processor is
/// diffusers' `transformer_blocks.N.attn.processor` or `single_transformer_blocks.N.attn.processor` and every
/// processor holds the same seven layers.
enum FluxOfficialNames {
    /// The official layer → diffusers' attention leaf it adds to. `to_*_proj` act on the text stream.
    static let leaves: [String: String] = [
        "to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out": "to_out.0",
        "to_q_proj": "add_q_proj", "to_k_proj": "add_k_proj", "to_v_proj": "add_v_proj",
    ]

    /// A single block's attention has no output projection and reads no text stream: the official
    /// processor calls only its q, k and v layers there.
    static let unusedInSingleBlocks: Set<String> = ["to_out", "to_q_proj", "to_k_proj", "to_v_proj"]

    /// `(owner, layer)` of `…attn.processor.<layer>` (attn-procs grouping already took `_lora.down.weight` off).
    static func split(_ fileName: String) -> (owner: String, layer: String)? {
        let trimmed = fileName.hasSuffix("_lora") ? String(fileName.dropLast("_lora".count)) : fileName
        guard let range = trimmed.range(of: ".processor.", options: .backwards) else { return nil }
        return (String(trimmed[..<range.lowerBound]), String(trimmed[range.upperBound...]))
    }

    static func canonical(_ fileName: String) -> String? {
        guard let (owner, layer) = split(fileName), let leaf = leaves[layer], unapplied(fileName) == nil else { return nil }
        return BaseNames.flux1.normalise("\(owner).\(leaf)")
    }

    /// Why a layer the file holds is never applied by the official code; nil for a layer that is.
    static func unapplied(_ fileName: String) -> String? {
        guard let (owner, layer) = split(fileName), owner.hasPrefix("single_transformer_blocks."), unusedInSingleBlocks.contains(layer) else { return nil }
        return "the official FLUX processor never applies \(layer)_lora in a single block (its attention has no output projection and no text stream)"
    }

    /// The note for a left-out module: whether its ΔW is zero (up never trained) or not.
    static func leftOut(_ module: ModuleKeys, reason: String, file: SafeTensorsFile) -> String {
        var zero = false
        if let name = module.tensors[.up], let info = file.header.tensor(named: name), info.dtype.isConvertibleToFloat,
           let values = try? file.floats(info) {
            zero = values.allSatisfy { $0 == 0 }
            file.release(info)
        }
        return "module \(module.fileName) left out: \(reason); " + (zero ? "its up factor is all zero" : "it holds non-zero values that the official code never applies")
    }
}
