/// Diffusers AutoencoderKL parameter paths (module prefixes end with a dot).
enum VAEPaths {
    static let encoderConvIn = "encoder.conv_in.weight"
    static let decoderConvIn = "decoder.conv_in.weight"
    static let decoderConvOut = "decoder.conv_out.weight"

    static func encoderResnet(_ level: Int, _ index: Int) -> String { "encoder.down_blocks.\(level).resnets.\(index)." }
    static func decoderResnet(_ level: Int, _ index: Int) -> String { "decoder.up_blocks.\(level).resnets.\(index)." }
    static func downsampler(_ level: Int) -> String { "encoder.down_blocks.\(level).downsamplers.0.conv" }
    static func upsampler(_ level: Int) -> String { "decoder.up_blocks.\(level).upsamplers.0.conv" }
    /// `side` is `encoder` or `decoder`.
    static func midResnet(_ side: String, _ index: Int) -> String { "\(side).mid_block.resnets.\(index)." }
    static func attention(_ side: String) -> String { "\(side).mid_block.attentions.0." }
}
