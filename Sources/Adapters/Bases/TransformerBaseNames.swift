extension BaseNames {
    /// FLUX.1: 19 double blocks (image and text streams) and 38 single blocks of width 3072; CLIP-L and
    /// T5-XXL text encoders. diffusers names the blocks `transformer_blocks` and `single_transformer_blocks`
    /// with a layer per projection; kohya uses BFL's names, where q, k and v are one layer (`img_attn.qkv`,
    /// diffusers' fused `attn.to_qkv`) and a single block's q, k, v and MLP input are one `linear1`
    /// (no diffusers layer: named `single_transformer_blocks.N.linear1`).
    static func flux() -> BaseNameMap {
        var entries: [BaseNameMap.Entry] = []
        func add(_ path: String, _ kohya: String?, fused: Bool = false) {
            entries.append(.init(canonical: "transformer." + path, kohya: kohya.map { ["lora_unet_" + $0] } ?? [], kohyaOnly: fused))
        }
        for i in 0..<19 {
            let block = "transformer_blocks.\(i)", k = "double_blocks_\(i)_"
            for leaf in ["to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"] { add("\(block).attn.\(leaf)", nil) }
            add("\(block).attn.to_qkv", k + "img_attn_qkv", fused: true)
            add("\(block).attn.to_added_qkv", k + "txt_attn_qkv", fused: true)
            add("\(block).attn.to_out.0", k + "img_attn_proj")
            add("\(block).attn.to_add_out", k + "txt_attn_proj")
            add("\(block).ff.net.0.proj", k + "img_mlp_0")
            add("\(block).ff.net.2", k + "img_mlp_2")
            add("\(block).ff_context.net.0.proj", k + "txt_mlp_0")
            add("\(block).ff_context.net.2", k + "txt_mlp_2")
            add("\(block).norm1.linear", k + "img_mod_lin")
            add("\(block).norm1_context.linear", k + "txt_mod_lin")
        }
        for i in 0..<38 {
            let block = "single_transformer_blocks.\(i)", k = "single_blocks_\(i)_"
            for leaf in ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"] { add("\(block).\(leaf)", nil) }
            add("\(block).linear1", k + "linear1", fused: true)
            add("\(block).proj_out", k + "linear2")
            add("\(block).norm.linear", k + "modulation_lin")
        }
        entries += BaseNameMap.clipEntries("text_encoder", layers: 12, kohya: ["lora_te1_"])
        entries += BaseNameMap.t5Entries("text_encoder_2", blocks: 24, kohya: "lora_te3_")
        return BaseNameMap(components: ["transformer", "text_encoder", "text_encoder_2"], clipComponents: ["text_encoder"], entries: entries)
    }

    /// SD3 and 3.5: up to 38 joint blocks (24 in SD3 medium, width 1536; 38 in 3.5 large, width 2432), the
    /// last without the text stream's output (context_pre_only), SD3.5 medium's first blocks with a second
    /// attention; CLIP-L, CLIP-G and T5-XXL. kohya uses SAI's names: `joint_blocks_N_x_block_…` (image
    /// stream), `joint_blocks_N_context_block_…` (text stream), q, k and v fused into `attn_qkv`.
    static func stableDiffusion3() -> BaseNameMap {
        var entries: [BaseNameMap.Entry] = []
        func add(_ path: String, _ kohya: String?, fused: Bool = false) {
            entries.append(.init(canonical: "transformer." + path, kohya: kohya.map { ["lora_unet_" + $0] } ?? [], kohyaOnly: fused))
        }
        for i in 0..<38 {
            let block = "transformer_blocks.\(i)", x = "joint_blocks_\(i)_x_block_", c = "joint_blocks_\(i)_context_block_"
            for leaf in ["attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
                         "attn2.to_q", "attn2.to_k", "attn2.to_v"] { add("\(block).\(leaf)", nil) }
            add("\(block).attn.to_qkv", x + "attn_qkv", fused: true)
            add("\(block).attn.to_out.0", x + "attn_proj")
            add("\(block).attn2.to_qkv", x + "attn2_qkv", fused: true)
            add("\(block).attn2.to_out.0", x + "attn2_proj")
            add("\(block).ff.net.0.proj", x + "mlp_fc1")
            add("\(block).ff.net.2", x + "mlp_fc2")
            add("\(block).norm1.linear", x + "adaLN_modulation_1")
            add("\(block).attn.to_added_qkv", c + "attn_qkv", fused: true)
            add("\(block).attn.to_add_out", c + "attn_proj")
            add("\(block).ff_context.net.0.proj", c + "mlp_fc1")
            add("\(block).ff_context.net.2", c + "mlp_fc2")
            add("\(block).norm1_context.linear", c + "adaLN_modulation_1")
        }
        entries += BaseNameMap.clipEntries("text_encoder", layers: 12, kohya: ["lora_te1_"])
        entries += BaseNameMap.clipEntries("text_encoder_2", layers: 32, kohya: ["lora_te2_"])
        entries += BaseNameMap.t5Entries("text_encoder_3", blocks: 24, kohya: "lora_te3_")
        return BaseNameMap(components: ["transformer", "text_encoder", "text_encoder_2", "text_encoder_3"],
                           clipComponents: ["text_encoder", "text_encoder_2"], entries: entries)
    }
}
