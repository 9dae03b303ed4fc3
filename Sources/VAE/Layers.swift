import Engine

/// A forward-only convolution with bias (the VAE is never trained): 3×3 layers pad by 1 (same size), 1×1 layers do not.
/// x [B, Cin, H, W] → y [B, Cout, H, W]; `downsampled` gives [B, Cout, ⌈H/2⌉, ⌈W/2⌉].
/// With a bf16 source, convolutions between wide layers (64 channels or more on both sides: all but
/// conv_in, conv_out and the quant convs) also keep a bf16 copy for oneDNN; the narrow ones, which
/// touch the latents and the pixels, stay Float32, as does the encoder's downsampler.
struct VAEConv {
    let weight: Tensor<Float>  // [Cout, Cin, k, k]
    let bias: Tensor<Float>    // [Cout]
    let bf16: BF16Conv2d?

    init(_ source: VAEWeightSource, _ path: String, in inChannels: Int, out outChannels: Int, kernel: Int) throws {
        weight = try source.tensor(path + ".weight", [outChannels, inChannels, kernel, kernel])
        bias = try source.tensor(path + ".bias", [outChannels])
        let wide = inChannels >= 64 && outChannels >= 64
        bf16 = source.precision == .bf16 && wide ? BF16Conv2d(weight: weight, padding: kernel / 2) : nil
    }

    func callAsFunction(_ x: Tensor<Float>) -> Tensor<Float> {
        bf16?.forward(x: x, bias: bias) ?? Conv2d.forward(x: x, weight: weight, bias: bias, padding: weight.shape[2] / 2)
    }

    /// Stride 2 after zero padding (0, 1, 0, 1) — only the bottom row and right column, as diffusers'
    /// Downsample2D with `padding=0` (the LDM encoder's downsampler).
    func downsampled(_ x: Tensor<Float>) -> Tensor<Float> {
        Conv2d.forward(x: x, weight: weight, bias: bias, stride: 2, padding: 0, trailingPadding: 1)
    }
}

/// A forward-only Linear layer in PyTorch layout, stored as a 1×1 convolution in LDM files. x [N…, C] → [N…, Cout].
struct VAELinear {
    let weight: Tensor<Float>  // [Cout, Cin]
    let bias: Tensor<Float>    // [Cout]

    init(_ source: VAEWeightSource, _ path: String, in inFeatures: Int, out outFeatures: Int) throws {
        weight = try source.tensor(path + ".weight", [outFeatures, inFeatures])
        bias = try source.tensor(path + ".bias", [outFeatures])
    }

    func callAsFunction(_ x: Tensor<Float>) -> Tensor<Float> { Linear.forward(x: x, weight: weight, bias: bias) }
}

/// GroupNorm with affine parameters over x [B, C, H, W], optionally followed by SiLU.
struct NormLayer {
    let gamma: Tensor<Float>  // [C]
    let beta: Tensor<Float>   // [C]
    let groups: Int
    let eps: Double

    init(_ source: VAEWeightSource, _ path: String, channels: Int, groups: Int, eps: Double) throws {
        gamma = try source.tensor(path + ".weight", [channels])
        beta = try source.tensor(path + ".bias", [channels])
        self.groups = groups
        self.eps = eps
    }

    /// norm(x) (then SiLU) into a new tensor.
    func callAsFunction(_ x: Tensor<Float>, silu: Bool) -> Tensor<Float> {
        let y = Tensor<Float>(zeros: x.shape)
        apply(x, into: y, silu: silu)
        return y
    }

    /// x ← norm(x) (then SiLU). Safe in place: each group's statistics are taken before it is written.
    func applyInPlace(_ x: Tensor<Float>, silu: Bool) { apply(x, into: x, silu: silu) }

    private func apply(_ x: Tensor<Float>, into y: Tensor<Float>, silu: Bool) {
        _ = GroupNorm.forward(x: x, groups: groups, eps: eps, gamma: gamma, beta: beta, y: y)
        if silu { Activation.silu.forward(x: y, y: y) }
    }
}

/// a += b (same element count).
func accumulate(_ a: Tensor<Float>, _ b: Tensor<Float>) {
    precondition(a.count == b.count, "accumulate: \(a.shape) vs \(b.shape)")
    let ap = a.data, bp = b.data
    Parallel.forEach(a.count, grain: 16384) { r in for i in r { ap[i] += bp[i] } }
}

/// Channels-first x [1, C, H, W] → tokens [1, H·W, C].
func tokens(_ x: Tensor<Float>) -> Tensor<Float> {
    let (c, s) = (x.shape[1], x.shape[2] * x.shape[3])
    let y = Tensor<Float>(zeros: [1, s, c])
    let xp = x.data, yp = y.data
    Parallel.forEach(s, grain: max(1, 4096 / max(c, 1))) { rows in
        for p in rows { for ch in 0..<c { yp[p * c + ch] = xp[ch * s + p] } }
    }
    return y
}

/// residual [1, C, H, W] + tokens t [1, H·W, C] transposed back to channels first, as a new tensor.
func addingTokens(_ t: Tensor<Float>, to residual: Tensor<Float>) -> Tensor<Float> {
    let (c, s) = (residual.shape[1], residual.shape[2] * residual.shape[3])
    precondition(t.count == c * s, "addingTokens: \(t.shape) vs \(residual.shape)")
    let y = Tensor<Float>(zeros: residual.shape)
    let tp = t.data, rp = residual.data, yp = y.data
    Parallel.forEach(c, grain: max(1, 4096 / max(s, 1))) { channels in
        for ch in channels { for p in 0..<s { yp[ch * s + p] = rp[ch * s + p] + tp[p * c + ch] } }
    }
    return y
}
