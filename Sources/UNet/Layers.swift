import Engine

/// State of one UNet call: the adapter bindings (module path → factors and active components of each
/// adapter hooked there; training binds one) and whether layers keep what backward needs.
///
/// With `recomputes`, a recording pass keeps only each block's input (a resnet, or a spatial transformer
/// and each of its transformer blocks) and runs the block without recording; backward runs that block's
/// forward again, recording, just before its backward. The same arithmetic in the same order, so gradients
/// are bitwise those of a full recording, while at most one block's activations are alive at a time.
final class UNetPass {
    struct Binding {
        let factors: AdapterFactors<Float>
        let active: Int
    }

    let bindings: [String: [Binding]]
    let recording: Bool
    let recomputes: Bool
    /// Inputs of the blocks to run again in backward, by block identity.
    var blockInputs: [ObjectIdentifier: Tensor<Float>] = [:]
    /// The time embedding and the context, which block replays need.
    var embedding: Tensor<Float>?
    var context: Tensor<Float>?

    init(bindings: [String: [Binding]], recording: Bool, recomputes: Bool = false) {
        self.bindings = bindings
        self.recording = recording
        self.recomputes = recording && recomputes
    }

    /// The same bindings without recording (a recomputing pass's blocks run through this).
    private(set) lazy var forwardOnly = UNetPass(bindings: bindings, recording: false)
}

/// A frozen Linear, optionally hooked by adapters (two thin GEMMs each, ΔW never formed).
/// x [N…, in] → y [N…, out]. Unmasked adapters may be merged into `weight` (the layer's own copy).
/// In bf16 (`use(.bf16)`) the weight lives rounded in `bf16` and `weight` is released.
final class DenseLayer {
    let path: String
    var weight: Tensor<Float>
    private(set) var bf16: BF16Linear?
    let bias: Tensor<Float>?
    let inFeatures: Int, outFeatures: Int
    var savedInput: Tensor<Float>?
    /// The trained hook's factors as the bf16 forward stacked and rounded them, for its backward.
    var savedStack: BF16Adapter.Stacked?

    init(_ source: UNetWeightSource, _ path: String, bias: Bool = true) throws {
        self.path = path
        weight = try source.tensor(path + ".weight")
        guard weight.rank == 2 else { throw UNetError.badShape(path + ".weight", expected: [-1, -1], got: weight.shape) }
        (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        self.bias = bias && source.has(path + ".bias") ? try source.tensor(path + ".bias", shape: [weight.shape[0]]) : nil
    }

    /// Rounds the weight to bf16 for oneDNN's products and releases the Float32 copy (once; fp32 is a no-op).
    func use(_ precision: Precision) {
        guard precision == .bf16, bf16 == nil else { return }
        bf16 = BF16Linear(weight: weight)
        weight = Tensor<Float>(zeros: [0, inFeatures])
    }

    func forward(_ x: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        let bindings = pass.bindings[path] ?? []
        savedInput = pass.recording ? x : nil
        savedStack = nil
        guard let bf16 else {
            let y = Linear.forward(x: x, weight: weight, bias: bias)
            for b in bindings { LowRankAdapter.forward(x: x, factors: b.factors, active: b.active, y: y) }
            return y
        }
        // One rounding of x serves the Linear and its hooks; the trained hook's stack is kept for backward.
        let y = Tensor<Float>(uninitialized: x.shape.dropLast() + [outFeatures])
        BFloat16.withRounded(x) { xr in
            bf16.forward(x: xr, bias: bias, y: y)
            for (i, b) in bindings.enumerated() {
                let stack = BF16Adapter.Stacked(b.factors, active: b.active, inF: inFeatures, outF: outFeatures)
                BF16Adapter.forward(x: xr, factors: b.factors, stacked: stack, active: b.active, y: y)
                if i == 0 && pass.recording { savedStack = stack }
            }
        }
        return y
    }
}

extension DenseLayer {
    /// dy [N…, out] → dx [N…, in] (nil when `needInput` is false); adapter factor gradients accumulate.
    func backward(_ dy: Tensor<Float>, _ pass: UNetPass, _ grads: UNetGradientStore, needInput: Bool = true) -> Tensor<Float>? {
        let x = recorded(savedInput, path)
        let stack = savedStack
        (savedInput, savedStack) = (nil, nil)
        // In bf16 the Linear's product sets dx (the hooks add to it), so it needs no zero-fill.
        let dx = needInput ? (bf16 == nil ? Tensor<Float>(zeros: x.shape) : Tensor<Float>(uninitialized: x.shape)) : nil
        // The trained hook: the first binding, when the pass collects its gradients.
        let binding = grads.factors[path] == nil ? nil : pass.bindings[path]?.first
        let gradients = binding == nil ? nil : grads.factors[path]
        guard let bf16 else {
            if let dx { Linear.backward(dy: dy, x: x, weight: weight, dx: dx, dWeight: nil, dBias: nil) }
            if let binding, let gradients {
                LowRankAdapter.backward(dy: dy, x: x, factors: binding.factors, active: binding.active, dx: dx, gradients: gradients)
            }
            return dx
        }
        guard let binding, let gradients, case .ortho = binding.factors, case .ortho = gradients, let stack else {
            if let dx { BFloat16.withRounded(dy) { bf16.backwardData(dy: $0, dx: dx, overwriting: true) } }
            if let binding, let gradients {
                BF16Adapter.backward(dy: dy, x: x, factors: binding.factors, active: binding.active, dx: dx, gradients: gradients)
            }
            return dx
        }
        // One rounding of dy serves the Linear's backward and the hook's.
        BFloat16.withRounded(dy) { dyr in
            if let dx { bf16.backwardData(dy: dyr, dx: dx, overwriting: true) }
            BF16Adapter.backward(dy: dyr, x: x, factors: binding.factors, stacked: stack, active: binding.active, dx: dx, gradients: gradients)
        }
        return dx
    }
}

/// A frozen 2-D convolution (3×3 with padding 1, or 1×1). x [B, Cin, H, W] → y [B, Cout, Ho, Wo].
/// In bf16 (`use(.bf16)`) the weight lives in `bf16` and `weight` is released.
final class ConvLayer {
    private(set) var weight: Tensor<Float>
    private(set) var bf16: BF16Conv2d?
    let bias: Tensor<Float>?
    let stride: Int
    let inChannels: Int, outChannels: Int, padding: Int
    var savedInput: Tensor<Float>?

    init(_ source: UNetWeightSource, _ path: String, stride: Int = 1) throws {
        weight = try source.tensor(path + ".weight")
        guard weight.rank == 4, weight.shape[2] == weight.shape[3] else {
            throw UNetError.badShape(path + ".weight", expected: [-1, -1, 3, 3], got: weight.shape)
        }
        bias = source.has(path + ".bias") ? try source.tensor(path + ".bias", shape: [weight.shape[0]]) : nil
        self.stride = stride
        (outChannels, inChannels, padding) = (weight.shape[0], weight.shape[1], weight.shape[2] / 2)
    }

    /// Rounds the weight to bf16 for oneDNN's convolutions and releases the Float32 copy (once; fp32 is a no-op).
    func use(_ precision: Precision) {
        guard precision == .bf16, bf16 == nil else { return }
        bf16 = BF16Conv2d(weight: weight, stride: stride, padding: padding)
        weight = Tensor<Float>(zeros: [outChannels, inChannels, 0, 0])
    }

    func forward(_ x: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        savedInput = pass.recording ? x : nil
        return bf16?.forward(x: x, bias: bias) ?? Conv2d.forward(x: x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}

extension ConvLayer {
    func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let x = recorded(savedInput, "conv input")
        savedInput = nil
        guard let bf16 else {
            let dx = Tensor<Float>(zeros: x.shape)
            Conv2d.backward(dy: dy, x: x, weight: weight, stride: stride, padding: padding, dx: dx, dWeight: nil, dBias: nil)
            return dx
        }
        let dx = Tensor<Float>(uninitialized: x.shape)  // set by the product, not added to
        bf16.backwardData(dy: dy, dx: dx, overwriting: true)
        return dx
    }
}

/// GroupNorm with affine parameters. x [B, C, H, W] → same shape.
final class GroupNormLayer {
    let gamma: Tensor<Float>, beta: Tensor<Float>
    let groups: Int, eps: Double
    var saved: (x: Tensor<Float>, stats: NormStats)?

    init(_ source: UNetWeightSource, _ path: String, groups: Int, eps: Double) throws {
        gamma = try source.tensor(path + ".weight")
        beta = try source.tensor(path + ".bias", shape: gamma.shape)
        self.groups = groups
        self.eps = eps
    }

    func forward(_ x: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        let y = Tensor<Float>(uninitialized: x.shape)  // every element written
        let stats = GroupNorm.forward(x: x, groups: groups, eps: eps, gamma: gamma, beta: beta, y: y)
        saved = pass.recording ? (x, stats) : nil
        return y
    }
}

extension GroupNormLayer {
    func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let (x, stats) = recorded(saved, "group norm input")
        saved = nil
        let dx = Tensor<Float>(zeros: x.shape)
        GroupNorm.backward(dy: dy, x: x, stats: stats, groups: groups, gamma: gamma, dx: dx, dGamma: nil, dBeta: nil)
        return dx
    }
}

/// LayerNorm over the last dimension with affine parameters. x [B, L, C] → same shape.
final class LayerNormLayer {
    let gamma: Tensor<Float>, beta: Tensor<Float>
    let eps: Double
    var saved: (x: Tensor<Float>, stats: NormStats)?

    init(_ source: UNetWeightSource, _ path: String, eps: Double = 1e-5) throws {
        gamma = try source.tensor(path + ".weight")
        beta = try source.tensor(path + ".bias", shape: gamma.shape)
        self.eps = eps
    }

    func forward(_ x: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        let y = Tensor<Float>(uninitialized: x.shape)  // every element written
        let stats = LayerNorm.forward(x: x, eps: eps, gamma: gamma, beta: beta, y: y)
        saved = pass.recording ? (x, stats) : nil
        return y
    }
}

extension LayerNormLayer {
    func backward(_ dy: Tensor<Float>) -> Tensor<Float> {
        let (x, stats) = recorded(saved, "layer norm input")
        saved = nil
        let dx = Tensor<Float>(zeros: x.shape)
        LayerNorm.backward(dy: dy, x: x, stats: stats, gamma: gamma, dx: dx, dGamma: nil, dBeta: nil)
        return dx
    }
}

// MARK: Element-wise helpers

/// a + b (same element count), new tensor shaped like a.
func added(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Tensor<Float> {
    precondition(a.count == b.count, "add: \(a.shape) vs \(b.shape)")
    let y = Tensor<Float>(uninitialized: a.shape)
    let ap = a.data, bp = b.data, yp = y.data
    Parallel.forEach(a.count, grain: 16384) { r in for i in r { yp[i] = ap[i] + bp[i] } }
    return y
}

/// a += b (same element count).
func accumulate(_ a: Tensor<Float>, _ b: Tensor<Float>) {
    precondition(a.count == b.count, "accumulate: \(a.shape) vs \(b.shape)")
    let ap = a.data, bp = b.data
    Parallel.forEach(a.count, grain: 16384) { r in for i in r { ap[i] += bp[i] } }
}

/// x [B, C, S] → [B, S, C] (channels-first image to tokens), or back with `inverse`.
func transposed(_ x: Tensor<Float>, rows: Int, cols: Int, shape: [Int]) -> Tensor<Float> {
    let batch = x.count / (rows * cols)
    let y = Tensor<Float>(uninitialized: shape)
    let xp = x.data, yp = y.data
    for b in 0..<batch {
        let src = xp + b * rows * cols, dst = yp + b * rows * cols
        Parallel.forEach(rows, grain: max(1, 4096 / max(cols, 1))) { rs in
            for r in rs { for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] } }
        }
    }
    return y
}

/// Channels-first [B, C, H, W] → tokens [B, H·W, C].
func toTokens(_ x: Tensor<Float>) -> Tensor<Float> {
    let (b, c, s) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    return transposed(x, rows: c, cols: s, shape: [b, s, c])
}

/// Tokens [B, H·W, C] → channels-first [B, C, H, W].
func toChannels(_ x: Tensor<Float>, height: Int, width: Int) -> Tensor<Float> {
    let (b, s, c) = (x.shape[0], x.shape[1], x.shape[2])
    precondition(s == height * width, "toChannels: \(s) tokens for \(height)×\(width)")
    return transposed(x, rows: s, cols: c, shape: [b, c, height, width])
}

/// dL/dx of y = silu(x), given dL/dy.
func siluBackward(_ dy: Tensor<Float>, input x: Tensor<Float>) -> Tensor<Float> {
    let dx = Tensor<Float>(zeros: x.shape)
    Activation.silu.backward(dy: dy, x: x, dx: dx)
    return dx
}

/// What a recording forward kept, for a backward (a missing one is a programming error).
func recorded<V>(_ value: V?, _ what: String) -> V {
    guard let value else { preconditionFailure("UNet backward: \(what) was not recorded (run the recording forward first)") }
    return value
}
