extension BaseNames {
    /// SD 1.x and 2.x: four UNet levels of two resnets (three going up), attention in the first three
    /// down levels and the last three up levels, one transformer block each, one text encoder. kohya's
    /// sd-scripts trains diffusers' UNet for these, so its names are the diffusers paths with `_`
    /// (`lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k`), and `lora_te_` for the
    /// text encoder (diffusers' converter writes `lora_te1_`; both are read).
    static func stableDiffusion(textLayers: Int) -> BaseNameMap {
        var entries: [BaseNameMap.Entry] = []
        func unet(_ path: String) {
            entries.append(.init(canonical: "unet." + path, kohya: ["lora_unet_" + BaseNameMap.underscored(path)]))
        }
        func attention(_ block: String) {
            unet("\(block).proj_in")
            unet("\(block).proj_out")
            for leaf in ModuleNames.attentionLeaves { unet("\(block).transformer_blocks.0.\(leaf)") }
        }
        func resnet(_ block: String) {
            for leaf in ["conv1", "conv2", "conv_shortcut", "time_emb_proj"] { unet("\(block).\(leaf)") }
        }
        for level in 0..<4 {
            for j in 0..<2 {
                resnet("down_blocks.\(level).resnets.\(j)")
                if level < 3 { attention("down_blocks.\(level).attentions.\(j)") }
            }
            if level < 3 { unet("down_blocks.\(level).downsamplers.0.conv") }
        }
        resnet("mid_block.resnets.0")
        attention("mid_block.attentions.0")
        resnet("mid_block.resnets.1")
        for level in 0..<4 {
            for j in 0..<3 {
                resnet("up_blocks.\(level).resnets.\(j)")
                if level > 0 { attention("up_blocks.\(level).attentions.\(j)") }
            }
            if level < 3 { unet("up_blocks.\(level).upsamplers.0.conv") }
        }
        entries += BaseNameMap.clipEntries("text_encoder", layers: textLayers, kohya: ["lora_te_", "lora_te1_"])
        return BaseNameMap(components: ["unet", "text_encoder"], clipComponents: ["text_encoder"], entries: entries)
    }
}
