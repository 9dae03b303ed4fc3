import Engine

/// diffusers' VAE Encoder followed by quant_conv: x [1, Cin, H, W] → moments [1, 2·latent, H/f, W/f]
/// (f = 2^(levels − 1)): conv_in; per level `layersPerBlock` resnets and, except at the last level, a
/// stride-2 downsampler; mid block; GroupNorm, SiLU, conv_out; quant_conv.
struct VAEEncoder {
    let convIn: VAEConv
    let levels: [(resnets: [ResnetBlock], downsampler: VAEConv?)]
    let mid: MidBlock
    let normOut: NormLayer
    let convOut: VAEConv
    let quantConv: VAEConv?

    init(_ source: VAEWeightSource, config: AutoencoderKLConfig) throws {
        let channels = config.blockOutChannels
        convIn = try VAEConv(source, "encoder.conv_in", in: config.inChannels, out: channels[0], kernel: 3)
        var levels: [(resnets: [ResnetBlock], downsampler: VAEConv?)] = []
        var previous = channels[0]
        for (level, c) in channels.enumerated() {
            let resnets = try (0..<config.layersPerBlock).map { j in
                try ResnetBlock(source, VAEPaths.encoderResnet(level, j), in: j == 0 ? previous : c, out: c, config: config)
            }
            let downsampler = level == channels.count - 1 ? nil
                : try VAEConv(source, VAEPaths.downsampler(level), in: c, out: c, kernel: 3)
            levels.append((resnets, downsampler))
            previous = c
        }
        self.levels = levels
        mid = try MidBlock(source, side: "encoder", channels: previous, config: config)
        normOut = try NormLayer(source, "encoder.conv_norm_out", channels: previous, groups: config.groups, eps: config.eps)
        let moments = 2 * config.latentChannels
        convOut = try VAEConv(source, "encoder.conv_out", in: previous, out: moments, kernel: 3)
        quantConv = config.useQuantConv ? try VAEConv(source, "quant_conv", in: moments, out: moments, kernel: 1) : nil
    }

    func callAsFunction(_ x: Tensor<Float>) -> Tensor<Float> {
        var h = convIn(x)
        for level in levels {
            for resnet in level.resnets { h = resnet(h) }
            if let downsampler = level.downsampler { h = downsampler.downsampled(h) }
        }
        h = mid(h)
        normOut.applyInPlace(h, silu: true)
        h = convOut(h)
        return quantConv.map { $0(h) } ?? h
    }
}
