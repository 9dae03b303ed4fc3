import Engine

// Which layers compute in bf16. Each block decides for its own layers, so the UNet can switch block by
// block while it loads (at most one block's Float32 weights exist beside the bf16 ones).
//
// bf16: every Linear that runs on tokens (attention projections, feed-forwards, proj_in/proj_out), the
// attention products, and the resnets' and samplers' convolutions: nearly all of the arithmetic. The
// embedding MLPs and the resnets' time projections run on one row per image and stay Float32, as do
// conv_in and conv_out (4 channels in or out): their cost is negligible, and keeping them exact keeps
// bf16 noise out of the time embedding every resnet reads and out of the last layer before the output.

extension ResnetBlock {
    func use(_ precision: Precision) {
        for conv in [conv1, conv2] + [shortcut].compactMap({ $0 }) { conv.use(precision) }
    }
}

extension SpatialTransformer {
    func use(_ precision: Precision) {
        for layer in linears { layer.use(precision) }
        for attention in attentions { attention.precision = precision }
    }
}

extension SDXLUNet {
    /// Switches the frozen products to `precision`. bf16 rounds the weights once and releases the Float32
    /// copies (half the memory), so merge unmasked adapters before (their sum is then rounded once, as a
    /// merged checkpoint would be); there is no way back to fp32.
    public func use(_ precision: Precision) {
        guard precision == .bf16 else { return }
        for block in resnets { block.use(.bf16) }
        for block in transformers { block.use(.bf16) }
        for conv in down.compactMap(\.downsample) + up.compactMap(\.upsample) { conv.use(.bf16) }
        self.precision = .bf16
    }

    /// Whether bf16 convolutions keep their weight's copy in the backward's layout between calls (about 0.6 GB
    /// for SDXL) or make it per call (see `BF16Conv2d.keepsBackwardWeights`). Set before the first backward.
    public var keepsBackwardWeights: Bool {
        get { convLayers.allSatisfy { $0.bf16?.keepsBackwardWeights ?? true } }
        set { for layer in convLayers { layer.bf16?.keepsBackwardWeights = newValue } }
    }

    var resnets: [ResnetBlock] { down.flatMap(\.resnets) + midResnets + up.flatMap(\.resnets) }

    var transformers: [SpatialTransformer] { down.flatMap(\.attentions) + [midAttention].compactMap { $0 } + up.flatMap(\.attentions) }

    /// Every frozen Linear and convolution of the UNet, in no particular order.
    var denseLayers: [DenseLayer] {
        [timeLinear1, timeLinear2, addLinear1, addLinear2] + resnets.map(\.timeProj)
            + transformers.flatMap(\.linears)
    }

    var convLayers: [ConvLayer] {
        [convIn, convOut] + resnets.flatMap { [$0.conv1, $0.conv2] + [$0.shortcut].compactMap { $0 } }
            + down.compactMap(\.downsample) + up.compactMap(\.upsample)
    }

    /// Bytes of the frozen Linear and convolution weights as held now (Float32 or bf16 copies).
    public var frozenWeightBytes: Int {
        denseLayers.reduce(0) { $0 + ($1.bf16?.bytes ?? 4 * $1.weight.count) }
            + convLayers.reduce(0) { $0 + ($1.bf16?.bytes ?? 4 * $1.weight.count) }
    }
}

extension ResnetBlock {
    /// Self after `use(precision)`, for building blocks in their precision as they load.
    func using(_ precision: Precision) -> Self { use(precision); return self }
}

extension SpatialTransformer {
    func using(_ precision: Precision) -> Self { use(precision); return self }
}

extension ConvLayer {
    func using(_ precision: Precision) -> Self { use(precision); return self }
}
