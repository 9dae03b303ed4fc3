import Engine

/// post_quant_conv followed by diffusers' VAE Decoder: z [1, latent, h, w] → image [1, Cout, f·h, f·w]:
/// post_quant_conv; conv_in; mid block; per level (lowest resolution first) `layersPerBlock + 1`
/// resnets and, except at the last level, nearest 2× upsampling and a 3×3 conv; GroupNorm, SiLU, conv_out.
struct VAEDecoder {
    let postQuantConv: VAEConv?
    let convIn: VAEConv
    let mid: MidBlock
    let levels: [(resnets: [ResnetBlock], upsampler: VAEConv?)]
    let normOut: NormLayer
    let convOut: VAEConv

    init(_ source: VAEWeightSource, config: AutoencoderKLConfig) throws {
        let channels = Array(config.blockOutChannels.reversed())
        let latent = config.latentChannels
        postQuantConv = config.usePostQuantConv ? try VAEConv(source, "post_quant_conv", in: latent, out: latent, kernel: 1) : nil
        convIn = try VAEConv(source, "decoder.conv_in", in: latent, out: channels[0], kernel: 3)
        mid = try MidBlock(source, side: "decoder", channels: channels[0], config: config)
        var levels: [(resnets: [ResnetBlock], upsampler: VAEConv?)] = []
        var previous = channels[0]
        for (level, c) in channels.enumerated() {
            let resnets = try (0...config.layersPerBlock).map { j in
                try ResnetBlock(source, VAEPaths.decoderResnet(level, j), in: j == 0 ? previous : c, out: c, config: config)
            }
            let upsampler = level == channels.count - 1 ? nil
                : try VAEConv(source, VAEPaths.upsampler(level), in: c, out: c, kernel: 3)
            levels.append((resnets, upsampler))
            previous = c
        }
        self.levels = levels
        normOut = try NormLayer(source, "decoder.conv_norm_out", channels: previous, groups: config.groups, eps: config.eps)
        convOut = try VAEConv(source, "decoder.conv_out", in: previous, out: config.outChannels, kernel: 3)
    }

    func callAsFunction(_ z: Tensor<Float>) -> Tensor<Float> {
        var h = convIn(postQuantConv.map { $0(z) } ?? z)
        h = mid(h)
        for level in levels {
            for resnet in level.resnets { h = resnet(h) }
            if let upsampler = level.upsampler {
                let up = Tensor<Float>(zeros: [1, h.shape[1], 2 * h.shape[2], 2 * h.shape[3]])
                Upsample2x.forward(x: h, y: up)
                h = upsampler(up)
            }
        }
        normOut.applyInPlace(h, silu: true)
        return convOut(h)
    }
}
