import Engine

extension SDXLUNet {
    /// Every frozen Linear and convolution of the UNet, in no particular order.
    var denseLayers: [DenseLayer] {
        let resnets = down.flatMap(\.resnets) + midResnets + up.flatMap(\.resnets)
        return [timeLinear1, timeLinear2, addLinear1, addLinear2] + resnets.map(\.timeProj) + transformerLinears
    }

    var convLayers: [ConvLayer] {
        let resnets = down.flatMap(\.resnets) + midResnets + up.flatMap(\.resnets)
        return [convIn, convOut] + resnets.flatMap { [$0.conv1, $0.conv2] + [$0.shortcut].compactMap { $0 } }
            + down.compactMap(\.downsample) + up.compactMap(\.upsample)
    }

    /// Switches the frozen products to `precision`. bf16 rounds every Linear and convolution weight once
    /// and releases the Float32 copies (half the memory), so merge unmasked adapters before (their sum is
    /// then rounded once, as a merged checkpoint would be); there is no way back to fp32.
    public func use(_ precision: Precision) {
        guard precision == .bf16 else { return }
        for layer in transformerLinears { layer.use(.bf16) }
        for layer in convLayers where layer !== convIn && layer !== convOut { layer.use(.bf16) }
        for block in transformers.flatMap(\.attentions) { block.precision = .bf16 }
        self.precision = .bf16
    }

    /// The Linears that run on every token (projections, feed-forwards, proj_in/proj_out): nearly all of
    /// the UNet's Linear arithmetic. The embedding MLPs and the resnets' time projections run on one row
    /// per image and stay Float32, as do conv_in and conv_out (4 channels in or out): their cost is
    /// negligible, and keeping them exact keeps bf16 noise out of the time embedding every resnet reads
    /// and out of the last layer before the output.
    var transformers: [SpatialTransformer] { down.flatMap(\.attentions) + [midAttention].compactMap { $0 } + up.flatMap(\.attentions) }

    var transformerLinears: [DenseLayer] {
        transformers.flatMap { t in [t.projIn, t.projOut] + t.blocks.flatMap { [$0.ffIn, $0.ffOut] + $0.attn1.projections + $0.attn2.projections } }
    }

    /// Bytes of the frozen Linear and convolution weights as held now (Float32 or bf16 copies).
    public var frozenWeightBytes: Int {
        denseLayers.reduce(0) { $0 + ($1.bf16?.bytes ?? 4 * $1.weight.count) }
            + convLayers.reduce(0) { $0 + ($1.bf16?.bytes ?? 4 * $1.weight.count) }
    }
}
