import Engine

/// diffusers ResnetBlock2D without time embedding (output scale 1):
/// y = conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x), shortcut a 1×1 conv when channels change.
/// x [1, Cin, H, W] → [1, Cout, H, W].
struct ResnetBlock {
    let norm1, norm2: NormLayer
    let conv1, conv2: VAEConv
    let shortcut: VAEConv?

    init(_ source: VAEWeightSource, _ prefix: String, in inChannels: Int, out outChannels: Int, config: AutoencoderKLConfig) throws {
        norm1 = try NormLayer(source, prefix + "norm1", channels: inChannels, groups: config.groups, eps: config.eps)
        conv1 = try VAEConv(source, prefix + "conv1", in: inChannels, out: outChannels, kernel: 3)
        norm2 = try NormLayer(source, prefix + "norm2", channels: outChannels, groups: config.groups, eps: config.eps)
        conv2 = try VAEConv(source, prefix + "conv2", in: outChannels, out: outChannels, kernel: 3)
        shortcut = inChannels == outChannels ? nil
            : try VAEConv(source, prefix + "conv_shortcut", in: inChannels, out: outChannels, kernel: 1)
    }

    func callAsFunction(_ x: Tensor<Float>) -> Tensor<Float> {
        // Reassigning h frees each intermediate as soon as the next exists (at 1024 px one is 512 MB).
        var h = conv1(norm1(x, silu: true))
        norm2.applyInPlace(h, silu: true)
        h = conv2(h)
        accumulate(h, shortcut.map { $0(x) } ?? x)
        return h
    }
}

/// The mid block's single-head self-attention over pixels (diffusers Attention with group norm and
/// residual): t = tokens(norm(x)) [1, L, C]; y = x + to_out(softmax(q·kᵀ/√C)·v) back to [1, C, H, W].
struct MidAttention {
    let norm: NormLayer
    let q, k, v, out: VAELinear

    init(_ source: VAEWeightSource, _ prefix: String, channels c: Int, config: AutoencoderKLConfig) throws {
        norm = try NormLayer(source, prefix + "group_norm", channels: c, groups: config.groups, eps: config.eps)
        q = try VAELinear(source, prefix + "to_q", in: c, out: c)
        k = try VAELinear(source, prefix + "to_k", in: c, out: c)
        v = try VAELinear(source, prefix + "to_v", in: c, out: c)
        out = try VAELinear(source, prefix + "to_out.0", in: c, out: c)
    }

    func callAsFunction(_ x: Tensor<Float>) -> Tensor<Float> {
        let t = tokens(norm(x, silu: false))
        let attended = Attention.forward(q: q(t), k: k(t), v: v(t), heads: 1)
        return addingTokens(out(attended), to: x)
    }
}

/// UNetMidBlock2D: resnet, attention (when the model has it), resnet; channels unchanged.
struct MidBlock {
    let resnet0, resnet1: ResnetBlock
    let attention: MidAttention?

    init(_ source: VAEWeightSource, side: String, channels c: Int, config: AutoencoderKLConfig) throws {
        resnet0 = try ResnetBlock(source, VAEPaths.midResnet(side, 0), in: c, out: c, config: config)
        attention = config.midBlockAttention
            ? try MidAttention(source, VAEPaths.attention(side), channels: c, config: config) : nil
        resnet1 = try ResnetBlock(source, VAEPaths.midResnet(side, 1), in: c, out: c, config: config)
    }

    func callAsFunction(_ x: Tensor<Float>) -> Tensor<Float> {
        var h = resnet0(x)
        if let attention { h = attention(h) }
        return resnet1(h)
    }
}
