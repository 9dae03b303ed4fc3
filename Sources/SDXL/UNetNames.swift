/// UNet module names: SGM single-file ↔ diffusers (docs/formats.md, "Block mapping"), generated from the
/// block structure.
public enum UNetNames {
    /// Resnet internals: SGM leaf module → diffusers leaf module.
    static let resnetLeaves: [(String, String)] = [
        ("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."), ("skip_connection.", "conv_shortcut."),
    ]

    /// Module prefix pairs (SGM, diffusers, whether the module is a resnet), trailing dots included.
    public static func modulePairs(_ s: UNetStructure) -> [(sgm: String, diffusers: String, isResnet: Bool)] {
        var pairs: [(String, String, Bool)] = [
            ("input_blocks.0.0.", "conv_in.", false),
            ("time_embed.0.", "time_embedding.linear_1.", false), ("time_embed.2.", "time_embedding.linear_2.", false),
            ("label_emb.0.0.", "add_embedding.linear_1.", false), ("label_emb.0.2.", "add_embedding.linear_2.", false),
            ("out.0.", "conv_norm_out.", false), ("out.2.", "conv_out.", false),
            ("middle_block.0.", "mid_block.resnets.0.", true), ("middle_block.2.", "mid_block.resnets.1.", true),
        ]
        if s.midDepth > 0 { pairs.append(("middle_block.1.", "mid_block.attentions.0.", false)) }
        let stride = s.layersPerBlock + 1
        for i in 0..<s.levels {
            for j in 0..<s.layersPerBlock {
                let k = i * stride + j + 1
                pairs.append(("input_blocks.\(k).0.", "down_blocks.\(i).resnets.\(j).", true))
                if s.downDepths[i] > 0 { pairs.append(("input_blocks.\(k).1.", "down_blocks.\(i).attentions.\(j).", false)) }
            }
            if i < s.levels - 1 {
                pairs.append(("input_blocks.\((i + 1) * stride).0.op.", "down_blocks.\(i).downsamplers.0.conv.", false))
            }
        }
        let upStride = s.layersPerBlock + 1
        for i in 0..<s.upDepths.count {
            let hasAttention = s.upDepths[i] > 0
            for j in 0..<(s.layersPerBlock + 1) {
                let k = i * upStride + j
                pairs.append(("output_blocks.\(k).0.", "up_blocks.\(i).resnets.\(j).", true))
                if hasAttention { pairs.append(("output_blocks.\(k).1.", "up_blocks.\(i).attentions.\(j).", false)) }
            }
            if i < s.upDepths.count - 1 {
                let k = i * upStride + s.layersPerBlock
                pairs.append(("output_blocks.\(k).\(hasAttention ? 2 : 1).conv.", "up_blocks.\(i).upsamplers.0.conv.", false))
            }
        }
        return pairs
    }

    /// Converts one SGM tensor name (without `model.diffusion_model.`) to its diffusers name.
    /// (Build a `Tables` once with `tables(for:)` when converting many names.)
    public static func toDiffusers(_ name: String, structure: UNetStructure) -> String? {
        tables(for: structure).toDiffusers(name)
    }

    /// Converts one diffusers tensor or module name to SGM (without `model.diffusion_model.`).
    public static func toSingleFile(_ name: String, structure: UNetStructure) -> String? {
        tables(for: structure).toSingleFile(name)
    }

    public struct Tables: Sendable {
        let pairs: [(sgm: String, diffusers: String, isResnet: Bool)]

        public func toDiffusers(_ name: String) -> String? {
            let dotted = name + "."
            for pair in pairs where dotted.hasPrefix(pair.sgm) {
                var rest = String(dotted.dropFirst(pair.sgm.count))
                if pair.isResnet, !rest.isEmpty {
                    guard let leaf = UNetNames.resnetLeaves.first(where: { rest.hasPrefix($0.0) }) else { return nil }
                    rest = leaf.1 + rest.dropFirst(leaf.0.count)
                }
                return String((pair.diffusers + rest).dropLast())
            }
            return nil
        }

        public func toSingleFile(_ name: String) -> String? {
            let dotted = name + "."
            for pair in pairs where dotted.hasPrefix(pair.diffusers) {
                var rest = String(dotted.dropFirst(pair.diffusers.count))
                if pair.isResnet, !rest.isEmpty {
                    guard let leaf = UNetNames.resnetLeaves.first(where: { rest.hasPrefix($0.1) }) else { return nil }
                    rest = leaf.0 + rest.dropFirst(leaf.1.count)
                }
                return String((pair.sgm + rest).dropLast())
            }
            return nil
        }
    }

    public static func tables(for structure: UNetStructure) -> Tables {
        // Longest prefixes first so `input_blocks.1.` never shadows `input_blocks.10.`-style names.
        Tables(pairs: modulePairs(structure).sorted { $0.sgm.utf8.count > $1.sgm.utf8.count })
    }
}
