/// VAE tensor names: LDM single-file (`first_stage_model.` stripped) → diffusers AutoencoderKL.
enum VAENames {
    static let resnetLeaves: [(String, String)] = [("nin_shortcut.", "conv_shortcut.")]
    static let attentionLeaves: [(String, String)] = [
        ("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0."),
    ]

    /// Converts one LDM VAE tensor name; `levels` of the decoder are reversed in diffusers.
    static func toDiffusers(_ name: String, levels: Int) -> TensorMapping? {
        var p = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard p.count >= 2, p[0] == "encoder" || p[0] == "decoder" || p[0] == "quant_conv" || p[0] == "post_quant_conv" else {
            return nil
        }
        if p[0] == "quant_conv" || p[0] == "post_quant_conv" { return TensorMapping(diffusersName: name, singleFileName: name, transform: .identity) }
        let side = p[0]
        var transform = TensorMapping.Transform.identity
        switch p[1] {
        case "conv_in", "conv_out":
            break
        case "norm_out":
            p[1] = "conv_norm_out"
        case "down", "up":
            // encoder.down.I.block.J / .downsample.conv; decoder.up.I.block.J / .upsample.conv
            guard p.count >= 5, let i = Int(p[2]) else { return nil }
            let blockName = side == "encoder" ? "down_blocks" : "up_blocks"
            // Diffusers numbers decoder up blocks from the lowest resolution; LDM from the highest.
            let index = side == "encoder" ? i : levels - 1 - i
            if p[3] == "block", let j = Int(p[4]) {
                let rest = renameLeaf(Array(p[5...]), table: resnetLeaves)
                p = [side, blockName, String(index), "resnets", String(j)] + rest
            } else if p[3] == "downsample" || p[3] == "upsample" {
                p = [side, blockName, String(index), p[3] == "downsample" ? "downsamplers" : "upsamplers", "0"] + Array(p[4...])
            } else { return nil }
        case "mid":
            guard p.count >= 4 else { return nil }
            if p[2] == "block_1" || p[2] == "block_2" {
                p = [side, "mid_block", "resnets", p[2] == "block_1" ? "0" : "1"] + renameLeaf(Array(p[3...]), table: resnetLeaves)
            } else if p[2] == "attn_1" {
                let rest = renameLeaf(Array(p[3...]), table: attentionLeaves)
                if rest.first != "group_norm" && rest.last == "weight" { transform = .reshape }
                p = [side, "mid_block", "attentions", "0"] + rest
            } else { return nil }
        default:
            return nil
        }
        return TensorMapping(diffusersName: p.joined(separator: "."), singleFileName: name, transform: transform)
    }

    /// Number of resolution levels, read from the encoder's `down.I` names (SDXL: 4).
    static func levels(_ names: [String]) -> Int {
        let indices = names.compactMap { name -> Int? in
            let p = name.split(separator: ".")
            return p.count > 2 && p[0] == "encoder" && p[1] == "down" ? Int(p[2]) : nil
        }
        return (indices.max() ?? 3) + 1
    }

    private static func renameLeaf(_ parts: [String], table: [(String, String)]) -> [String] {
        let joined = parts.joined(separator: ".") + "."
        for (from, to) in table where joined.hasPrefix(from) {
            return String((to + joined.dropFirst(from.count)).dropLast()).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        }
        return parts
    }
}

/// OpenCLIP ViT-bigG names (SDXL's second text encoder, `conditioner.embedders.1.model.` stripped) → diffusers
/// CLIPTextModelWithProjection names (with the `text_model.` level).
enum OpenCLIPNames {
    static let leaves: [(String, String)] = [
        ("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."), ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."),
        ("attn.out_proj.", "self_attn.out_proj."),
    ]

    static func toDiffusers(_ name: String) -> [TensorMapping] {
        func same(_ diffusers: String, _ transform: TensorMapping.Transform = .identity) -> [TensorMapping] {
            [TensorMapping(diffusersName: diffusers, singleFileName: name, transform: transform)]
        }
        switch name {
        case "token_embedding.weight": return same("text_model.embeddings.token_embedding.weight")
        case "positional_embedding": return same("text_model.embeddings.position_embedding.weight")
        case "ln_final.weight": return same("text_model.final_layer_norm.weight")
        case "ln_final.bias": return same("text_model.final_layer_norm.bias")
        case "text_projection": return same("text_projection.weight", .transpose)
        default: break
        }
        let prefix = "transformer.resblocks."
        guard name.hasPrefix(prefix) else { return [] }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return [] }
        let leaf = String(rest[rest.index(after: dot)...])
        let base = "text_model.encoder.layers.\(layer)."
        if leaf == "attn.in_proj_weight" || leaf == "attn.in_proj_bias" {
            let kind = leaf.hasSuffix("weight") ? "weight" : "bias"
            return ["q", "k", "v"].enumerated().map { index, part in
                TensorMapping(diffusersName: base + "self_attn.\(part)_proj.\(kind)", singleFileName: name,
                              transform: .rows(index: index, count: 3))
            }
        }
        for (from, to) in leaves where leaf.hasPrefix(from) {
            return same(base + to + leaf.dropFirst(from.count))
        }
        return []
    }
}
