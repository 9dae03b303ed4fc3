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
        guard let (owner, layer) = split(fileName), let leaf = leaves[layer], !unapplied(fileName) else { return nil }
        return BaseNames.flux1.normalise("\(owner).\(leaf)")
    }

    /// Whether a layer the file holds is one the official code never applies.
    static func unapplied(_ fileName: String) -> Bool {
        guard let (owner, layer) = split(fileName) else { return false }
        return owner.hasPrefix("single_transformer_blocks.") && unusedInSingleBlocks.contains(layer)
    }

    /// One note for all left-out layers (a FLUX.1-dev file has 152): how many, and by name those whose
    /// up factor is not zero (trained values the official code would still not apply).
    static func leftOut(_ modules: [ModuleKeys], file: SafeTensorsFile) -> String {
        let nonZero = modules.filter { module in
            guard let name = module.tensors[.up], let info = file.header.tensor(named: name), info.dtype.isConvertibleToFloat else { return true }
            defer { file.release(info) }
            return (try? file.floats(info))?.allSatisfy { $0 == 0 } != true
        }
        let what = "\(modules.count) layer(s) left out (to_out_lora, to_q_proj_lora, to_k_proj_lora, to_v_proj_lora of single blocks, e.g. \(modules[0].fileName)): the official FLUX processor never applies them, a single block's attention having no output projection and no text stream"
        return nonZero.isEmpty ? what + "; all of them are zero"
            : what + "; \(nonZero.count) hold non-zero values the official code does not apply: " + nonZero.map(\.fileName).joined(separator: ", ")
    }
}
