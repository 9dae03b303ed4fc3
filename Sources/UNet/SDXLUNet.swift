import Engine
import SDXL

/// The SDXL UNet (diffusers `UNet2DConditionModel` semantics with SDXL's settings), built from an inferred
/// `UNetConfig` and weights in diffusers naming, so single-file and diffusers checkpoints load alike.
///
/// Inputs: latents [B, Cin, H, W] (H, W divisible by 2^(levels−1)), one DDPM timestep for the batch,
/// context (text encoder hidden states) [B, L, contextDim], pooled text embeds [B, pooledDim], time ids [B, 6].
/// Output: [B, Cout, H, W].
///
/// Layers keep per-call state (what backward needs), so one model runs one call at a time; a plain
/// `forward` between `forwardRecording` and `backward` discards the recording.
public final class SDXLUNet {
    public let config: UNetConfig

    struct DownLevel {
        let resnets: [ResnetBlock]
        let attentions: [SpatialTransformer]
        let downsample: ConvLayer?
    }

    struct UpLevel {
        let resnets: [ResnetBlock]
        let attentions: [SpatialTransformer]
        let upsample: ConvLayer?
    }

    let timeLinear1, timeLinear2, addLinear1, addLinear2: DenseLayer
    let convIn: ConvLayer
    let down: [DownLevel]
    let midResnets: [ResnetBlock]
    let midAttention: SpatialTransformer?
    let up: [UpLevel]
    let normOut: GroupNormLayer
    let convOut: ConvLayer
    /// Every attention projection that takes the adapter hook, by module path.
    let projections: [String: DenseLayer]
    /// Every Linear inside the spatial transformers (attention projections, ff, proj_in/proj_out), by
    /// module path: what standard LoRAs adapt (kohya's SDXL LoRAs: 722 modules).
    let linears: [String: DenseLayer]
    /// The loaded weights of layers whose weight now holds merged adapters (see `mergeIntoWeights(restorable:)`).
    var unmergedWeights: [String: Tensor<Float>] = [:]
    /// The arithmetic of the frozen products (see `use(_:)`).
    public internal(set) var precision: Precision = .fp32
    /// What the recording forward pass kept for backward beyond the layers' own inputs.
    var recorded: (pass: UNetPass, concatShapes: [[[Int]]], normOut: Tensor<Float>)?

    /// Opens the UNet of `model` (single file or diffusers folder), weights as Float32, or switched to bf16
    /// block by block as they load (see `use(_:)`; merge adapters into an fp32 UNet instead).
    public convenience init(model: SDXLModel, precision: Precision = .fp32) throws {
        guard let config = model.unetConfig else {
            throw UNetError.noConfig(model.unetConfigError ?? "no UNet configuration in \(model.path)")
        }
        // Loading frees each block's Float32 weights once rounded; keeping many for reuse would only raise the peak.
        let kept = TensorMemory.cachedLimit
        TensorMemory.cachedLimit = 256 << 20
        defer { TensorMemory.cachedLimit = kept }
        try self.init(config: config, source: UNetWeightSource(model: model), precision: precision)
    }

    public init(config: UNetConfig, source: UNetWeightSource, precision: Precision = .fp32) throws {
        self.config = config
        let s = config.structure, groups = config.normGroups
        guard config.useLinearProjection else {
            throw UNetError.noConfig("transformer proj_in/proj_out are 1×1 convolutions; only SDXL's linear projections are supported")
        }
        guard config.headCounts.count == s.levels, config.blockOutChannels.count == s.levels else {
            throw UNetError.noConfig("\(s.levels) levels but head counts \(config.headCounts), channels \(config.blockOutChannels)")
        }
        timeLinear1 = try DenseLayer(source, "time_embedding.linear_1")
        timeLinear2 = try DenseLayer(source, "time_embedding.linear_2")
        addLinear1 = try DenseLayer(source, "add_embedding.linear_1")
        addLinear2 = try DenseLayer(source, "add_embedding.linear_2")
        convIn = try ConvLayer(source, "conv_in")
        down = try (0..<s.levels).map { i in
            let path = "down_blocks.\(i)"
            return DownLevel(
                resnets: try (0..<s.layersPerBlock).map { try ResnetBlock(source, "\(path).resnets.\($0)", groups: groups).using(precision) },
                attentions: s.downDepths[i] == 0 ? [] : try (0..<s.layersPerBlock).map {
                    try SpatialTransformer(source, "\(path).attentions.\($0)", depth: s.downDepths[i],
                                           heads: config.headCounts[i], groups: groups).using(precision)
                },
                downsample: i == s.levels - 1 ? nil : try ConvLayer(source, "\(path).downsamplers.0.conv", stride: 2).using(precision))
        }
        midResnets = try (0..<2).map { try ResnetBlock(source, "mid_block.resnets.\($0)", groups: groups).using(precision) }
        midAttention = s.midDepth == 0 ? nil : try SpatialTransformer(
            source, "mid_block.attentions.0", depth: s.midDepth, heads: config.headCounts[s.levels - 1], groups: groups).using(precision)
        guard s.upDepths.count == s.levels else { throw UNetError.noConfig("\(s.upDepths.count) up blocks for \(s.levels) levels") }
        up = try (0..<s.levels).map { i in
            let path = "up_blocks.\(i)", level = s.levels - 1 - i
            return UpLevel(
                resnets: try (0...s.layersPerBlock).map { try ResnetBlock(source, "\(path).resnets.\($0)", groups: groups).using(precision) },
                attentions: s.upDepths[i] == 0 ? [] : try (0...s.layersPerBlock).map {
                    try SpatialTransformer(source, "\(path).attentions.\($0)", depth: s.upDepths[i],
                                           heads: config.headCounts[level], groups: groups).using(precision)
                },
                upsample: i == s.levels - 1 ? nil : try ConvLayer(source, "\(path).upsamplers.0.conv").using(precision))
        }
        normOut = try GroupNormLayer(source, "conv_norm_out", groups: groups, eps: 1e-5)
        convOut = try ConvLayer(source, "conv_out")

        var projections: [String: DenseLayer] = [:], linears: [String: DenseLayer] = [:]
        let transformers = down.flatMap(\.attentions) + [midAttention].compactMap { $0 } + up.flatMap(\.attentions)
        for attention in transformers.flatMap(\.attentions) {
            for p in attention.projections { projections[p.path] = p }
        }
        for layer in transformers.flatMap(\.linears) { linears[layer.path] = layer }
        self.projections = projections
        self.linears = linears
        self.precision = precision
    }

    /// Module paths that take an adapter (`to_q`, `to_k`, `to_v`, `to_out.0` of every attn1 and attn2).
    public var adaptableModules: [String] { projections.keys.sorted() }

    /// (in, out) features of an adaptable projection.
    public func projectionShape(_ path: String) -> (inFeatures: Int, outFeatures: Int)? {
        projections[path].map { ($0.inFeatures, $0.outFeatures) }
    }

    /// Which of the adapter's UNet modules the hook applies, and which it cannot use.
    public func report(_ adapter: UNetAdapter) -> (applied: [String], unused: [String]) {
        let names = adapter.modules.keys.sorted()
        return (names.filter { projections[$0] != nil }, names.filter { projections[$0] == nil })
    }

    /// Adapter bindings at timestep `t` on the attention projections (training hooks only these);
    /// throws when a module's shape does not fit its projection.
    func bindings(_ adapter: UNetAdapter?, at t: Double) throws -> [String: [UNetPass.Binding]] {
        guard let adapter else { return [:] }
        return try bindings([adapter], at: t, layers: projections)
    }

    /// Bindings of several adapters at timestep `t` on `layers`; modules without a layer are left out.
    func bindings(_ adapters: [UNetAdapter], at t: Double, layers: [String: DenseLayer]) throws -> [String: [UNetPass.Binding]] {
        var out: [String: [UNetPass.Binding]] = [:]
        for adapter in adapters {
            for (path, module) in adapter.modules {
                guard let layer = layers[path] else { continue }
                if let mismatch = Self.mismatch(module, layer) { throw UNetError.adapterMismatch("\(path) \(mismatch)") }
                out[path, default: []].append(UNetPass.Binding(factors: module.factors, active: adapter.active(module, at: t)))
            }
        }
        return out
    }

    /// Why a module's factors do not fit `layer`, or nil when they do.
    static func mismatch(_ module: UNetAdapter.Module, _ layer: DenseLayer) -> String? {
        mismatch(outFeatures: module.factors.outFeatures, inFeatures: module.factors.inFeatures, layer)
    }

    /// Why a module of shape [out, in] does not fit `layer`, or nil when it does.
    static func mismatch(outFeatures outF: Int, inFeatures inF: Int, _ layer: DenseLayer) -> String? {
        inF == layer.inFeatures && outF == layer.outFeatures ? nil
            : "is \(outF)×\(inF), the layer is \(layer.outFeatures)×\(layer.inFeatures)"
    }

    /// One UNet evaluation (see the type's comment for shapes). With an adapter, every matching attention
    /// projection adds ΔW(m(t))·x, m(t) keeping the components the adapter's schedule keeps at `timestep`.
    public func forward(
        latents: Tensor<Float>, timestep: Float, context: Tensor<Float>, textEmbeds: Tensor<Float>,
        timeIds: Tensor<Float>, adapter: UNetAdapter? = nil
    ) throws -> Tensor<Float> {
        let pass = UNetPass(bindings: try bindings(adapter, at: Double(timestep)), recording: false)
        try validate(latents: latents, context: context, textEmbeds: textEmbeds, timeIds: timeIds)
        return run(latents: latents, timestep: timestep, context: context, textEmbeds: textEmbeds, timeIds: timeIds, pass)
    }

    /// As `forward(…adapter:)` with several adapters hooked at once on every transformer Linear they
    /// adapt (attention projections, ff, proj_in/proj_out), each masked by its own schedule at `timestep`.
    public func forward(
        latents: Tensor<Float>, timestep: Float, context: Tensor<Float>, textEmbeds: Tensor<Float>,
        timeIds: Tensor<Float>, adapters: [UNetAdapter]
    ) throws -> Tensor<Float> {
        let pass = UNetPass(bindings: try bindings(adapters, at: Double(timestep), layers: linears), recording: false)
        try validate(latents: latents, context: context, textEmbeds: textEmbeds, timeIds: timeIds)
        return run(latents: latents, timestep: timestep, context: context, textEmbeds: textEmbeds, timeIds: timeIds, pass)
    }

    func validate(latents: Tensor<Float>, context: Tensor<Float>, textEmbeds: Tensor<Float>, timeIds: Tensor<Float>) throws {
        let factor = 1 << (config.structure.levels - 1)
        guard latents.rank == 4, latents.shape[1] == convIn.inChannels,
              latents.shape[2] % factor == 0, latents.shape[3] % factor == 0 else {
            throw UNetError.badInput("latents \(latents.shape): want [B, \(convIn.inChannels), H, W] with H, W multiples of \(factor)")
        }
        let b = latents.shape[0]
        guard context.rank == 3, context.shape[0] == b, context.shape[2] == config.contextDim else {
            throw UNetError.badInput("context \(context.shape): want [\(b), L, \(config.contextDim)]")
        }
        guard textEmbeds.shape == [b, config.pooledDim] else {
            throw UNetError.badInput("text embeds \(textEmbeds.shape): want [\(b), \(config.pooledDim)]")
        }
        guard timeIds.shape == [b, 6], addLinear1.inFeatures == config.pooledDim + 6 * config.addTimeEmbedDim else {
            throw UNetError.badInput("time ids \(timeIds.shape): want [\(b), 6]")
        }
    }

    /// Time embedding plus the text-time add embedding, after SiLU (what every resnet's time_emb_proj reads).
    func embedding(batch b: Int, timestep: Float, textEmbeds: Tensor<Float>, timeIds: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        let tEmb = TimestepEmbedding.forward(
            timesteps: Array(repeating: timestep, count: b), dim: timeLinear1.inFeatures, as: Float.self)
        let emb = timeLinear2.forward(Activation.silu.forward(timeLinear1.forward(tEmb, pass)), pass)
        let ids = TimestepEmbedding.forward(timesteps: timeIds.array, dim: config.addTimeEmbedDim, as: Float.self)
        let idWidth = 6 * config.addTimeEmbedDim, pooled = config.pooledDim
        let aug = Tensor<Float>(zeros: [b, pooled + idWidth])
        for i in 0..<b {
            (aug.data + i * (pooled + idWidth)).update(from: textEmbeds.data + i * pooled, count: pooled)
            (aug.data + i * (pooled + idWidth) + pooled).update(from: ids.data + i * idWidth, count: idWidth)
        }
        accumulate(emb, addLinear2.forward(Activation.silu.forward(addLinear1.forward(aug, pass)), pass))
        return Activation.silu.forward(emb)
    }

    func run(
        latents: Tensor<Float>, timestep: Float, context: Tensor<Float>, textEmbeds: Tensor<Float>,
        timeIds: Tensor<Float>, _ pass: UNetPass
    ) -> Tensor<Float> {
        let emb = embedding(batch: latents.shape[0], timestep: timestep, textEmbeds: textEmbeds, timeIds: timeIds, pass)
        if pass.recomputes { (pass.embedding, pass.context) = (emb, context) }
        var h = convIn.forward(latents, pass)
        var skips = [h]
        var concatShapes: [[[Int]]] = []
        for level in down {
            for (j, resnet) in level.resnets.enumerated() {
                h = run(resnet, h, emb, pass)
                if !level.attentions.isEmpty { h = run(level.attentions[j], h, context, pass) }
                skips.append(h)
            }
            if let ds = level.downsample {
                h = ds.forward(h, pass)
                skips.append(h)
            }
        }
        h = run(midResnets[0], h, emb, pass)
        if let midAttention { h = run(midAttention, h, context, pass) }
        h = run(midResnets[1], h, emb, pass)
        for level in up {
            for (j, resnet) in level.resnets.enumerated() {
                let skip = skips.removeLast()
                let joined = Tensor<Float>(zeros: [h.shape[0], h.shape[1] + skip.shape[1], h.shape[2], h.shape[3]])
                ChannelConcat.forward([h, skip], y: joined)
                concatShapes.append([h.shape, skip.shape])
                h = run(resnet, joined, emb, pass)
                if !level.attentions.isEmpty { h = run(level.attentions[j], h, context, pass) }
            }
            if let us = level.upsample {
                let big = Tensor<Float>(zeros: [h.shape[0], h.shape[1], 2 * h.shape[2], 2 * h.shape[3]])
                Upsample2x.forward(x: h, y: big)
                h = us.forward(big, pass)
            }
        }
        let normed = normOut.forward(h, pass)
        recorded = pass.recording ? (pass, concatShapes, normed) : nil
        return convOut.forward(Activation.silu.forward(normed), pass)
    }

    /// A resnet block in `pass`; a recomputing pass keeps only its input (see `UNetPass`).
    func run(_ block: ResnetBlock, _ x: Tensor<Float>, _ emb: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        guard pass.recomputes else { return block.forward(x, siluEmb: emb, pass) }
        pass.blockInputs[ObjectIdentifier(block)] = x
        return block.forward(x, siluEmb: emb, pass.forwardOnly)
    }

    /// A spatial transformer in `pass`; a recomputing pass keeps its input and its blocks' inputs.
    func run(_ block: SpatialTransformer, _ x: Tensor<Float>, _ context: Tensor<Float>, _ pass: UNetPass) -> Tensor<Float> {
        guard pass.recomputes else { return block.forward(x, context: context, pass) }
        pass.blockInputs[ObjectIdentifier(block)] = x
        return block.forward(x, context: context, pass.forwardOnly, keeping: pass)
    }
}
