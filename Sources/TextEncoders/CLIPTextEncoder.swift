import Engine
import SDXL

/// Hyperparameters of a CLIP text transformer, from the component's config.json when present,
/// otherwise inferred from the weight shapes (SDXL defaults for what shapes cannot tell).
public struct CLIPTextConfig: Sendable, Equatable {
    /// How the pooled embedding picks its token.
    public enum Pooling: Sendable, Equatable {
        /// The position of the largest id (the end token, 49407, in the CLIP vocabulary); what
        /// transformers does when config.json has the legacy `eos_token_id` 2, and what OpenCLIP does.
        case argmax
        /// The first position holding this id.
        case firstOf(Int)
    }

    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var activation: Activation
    public var layerNormEps: Double
    public var maxPositions: Int
    public var pooling: Pooling

    public init(hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, activation: Activation,
                layerNormEps: Double = 1e-5, maxPositions: Int = 77, pooling: Pooling = .argmax) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.activation = activation
        self.layerNormEps = layerNormEps
        self.maxPositions = maxPositions
        self.pooling = pooling
    }

    /// The configuration of `component` (`.textEncoder` or `.textEncoder2`) of `model`.
    public static func infer(model: SDXLModel, component: Component) throws -> CLIPTextConfig {
        let json = model.configs[component] ?? [:]
        func int(_ key: String) -> Int? { json[key] as? Int }
        guard let embedding = model.shape(component, CLIPTextEncoder.Names.tokenEmbedding), embedding.count == 2 else {
            throw TextEncoderError.missingWeight(component, CLIPTextEncoder.Names.tokenEmbedding)
        }
        let hidden = embedding[1]
        var layers = 0
        while model.shape(component, CLIPTextEncoder.Names.layer(layers) + "layer_norm1.weight") != nil { layers += 1 }
        guard layers >= 2 else {
            throw TextEncoderError.badConfig(component, "found \(layers) encoder layers (the penultimate hidden state needs at least 2)")
        }
        guard let fc1 = model.shape(component, CLIPTextEncoder.Names.layer(0) + "mlp.fc1.weight"), fc1.count == 2 else {
            throw TextEncoderError.missingWeight(component, CLIPTextEncoder.Names.layer(0) + "mlp.fc1.weight")
        }
        let positions = model.shape(component, CLIPTextEncoder.Names.positionEmbedding)?.first ?? 77
        let heads = int("num_attention_heads") ?? max(1, hidden / 64)
        guard heads > 0, hidden % heads == 0 else {
            throw TextEncoderError.badConfig(component, "hidden size \(hidden) does not split into \(heads) heads")
        }
        let activation: Activation
        switch json["hidden_act"] as? String {
        case "quick_gelu": activation = .quickGELU
        case "gelu": activation = .gelu
        case nil: activation = component == .textEncoder2 ? .gelu : .quickGELU
        case let other?: throw TextEncoderError.badConfig(component, "unsupported hidden_act '\(other)'")
        }
        let eos = int("eos_token_id") ?? 2
        let eps = json["layer_norm_eps"] as? Double ?? 1e-5
        if let configured = int("num_hidden_layers"), configured != layers {
            throw TextEncoderError.badConfig(component, "config.json says \(configured) layers, the weights hold \(layers)")
        }
        return CLIPTextConfig(
            hiddenSize: hidden, intermediateSize: fc1[0], layers: layers, heads: heads, activation: activation,
            layerNormEps: eps, maxPositions: positions, pooling: eos == 2 ? .argmax : .firstOf(eos))
    }
}

public enum TextEncoderError: Error, CustomStringConvertible, Equatable {
    case missingWeight(Component, String)
    case badShape(Component, String, expected: [Int], got: [Int])
    case badConfig(Component, String)
    case badInput(String)

    public var description: String {
        switch self {
        case let .missingWeight(c, name): return "\(c.rawValue) weight '\(name)' is missing"
        case let .badShape(c, name, expected, got): return "\(c.rawValue) weight '\(name)': expected shape \(expected), got \(got)"
        case let .badConfig(c, why): return "cannot build \(c.rawValue): \(why)"
        case let .badInput(why): return "text encoder input: \(why)"
        }
    }
}

/// What one text encoder computes for one token sequence of length L.
public struct CLIPTextOutput: Sendable {
    /// hidden_states[-2]: the output of layer N−2, before the final LayerNorm [L, D] (what SDXL conditions on).
    public let penultimate: Tensor<Float>
    /// final_layer_norm(output of the last layer) [L, D].
    public let last: Tensor<Float>
    /// `last` at the pooling position [D].
    public let pooled: Tensor<Float>
    /// pooled · text_projectionᵀ [P], when the encoder has a projection (text_encoder_2).
    public let projected: Tensor<Float>?
}

/// A CLIP text transformer (transformers' CLIPTextModel / CLIPTextModelWithProjection), forward only, Float32.
public final class CLIPTextEncoder: @unchecked Sendable {
    enum Names {
        static let tokenEmbedding = "text_model.embeddings.token_embedding.weight"
        static let positionEmbedding = "text_model.embeddings.position_embedding.weight"
        static func layer(_ i: Int) -> String { "text_model.encoder.layers.\(i)." }
        static let finalNorm = "text_model.final_layer_norm."
        static let projection = "text_projection.weight"
    }

    struct Affine { let weight: Tensor<Float>; let bias: Tensor<Float>? }

    struct Layer {
        var norm1, q, k, v, out, norm2, fc1, fc2: Affine
    }

    public let component: Component
    public let config: CLIPTextConfig
    let tokenEmbedding: Tensor<Float>   // [V, D]
    let positionEmbedding: Tensor<Float> // [P, D]
    /// Replaced (never written in place) when adapters are merged into a Linear's weight.
    var layers: [Layer]
    let finalNorm: Affine
    let projection: Tensor<Float>?      // [P, D] (PyTorch Linear layout)

    /// `.textEncoder` or `.textEncoder2` of a checkpoint in either layout.
    public init(model: SDXLModel, component: Component, config: CLIPTextConfig? = nil) throws {
        let config = try config ?? CLIPTextConfig.infer(model: model, component: component)
        self.component = component
        self.config = config
        let d = config.hiddenSize, f = config.intermediateSize
        func tensor(_ name: String, _ expected: [Int]) throws -> Tensor<Float> {
            guard let shape = model.shape(component, name) else { throw TextEncoderError.missingWeight(component, name) }
            guard shape == expected else { throw TextEncoderError.badShape(component, name, expected: expected, got: shape) }
            return Tensor(shape: shape, values: try model.floats(component, name))
        }
        func affine(_ prefix: String, _ out: Int, _ inp: Int?) throws -> Affine {
            let weightShape = inp.map { [out, $0] } ?? [out]
            return Affine(weight: try tensor(prefix + "weight", weightShape), bias: try tensor(prefix + "bias", [out]))
        }
        guard let vocab = model.shape(component, Names.tokenEmbedding)?.first else {
            throw TextEncoderError.missingWeight(component, Names.tokenEmbedding)
        }
        tokenEmbedding = try tensor(Names.tokenEmbedding, [vocab, d])
        positionEmbedding = try tensor(Names.positionEmbedding, [config.maxPositions, d])
        layers = try (0..<config.layers).map { i in
            let p = Names.layer(i)
            return Layer(
                norm1: try affine(p + "layer_norm1.", d, nil),
                q: try affine(p + "self_attn.q_proj.", d, d), k: try affine(p + "self_attn.k_proj.", d, d),
                v: try affine(p + "self_attn.v_proj.", d, d), out: try affine(p + "self_attn.out_proj.", d, d),
                norm2: try affine(p + "layer_norm2.", d, nil),
                fc1: try affine(p + "mlp.fc1.", f, d), fc2: try affine(p + "mlp.fc2.", d, f))
        }
        finalNorm = try affine(Names.finalNorm, d, nil)
        if let shape = model.shape(component, Names.projection) {
            guard shape.count == 2, shape[1] == d else {
                throw TextEncoderError.badShape(component, Names.projection, expected: [shape.first ?? d, d], got: shape)
            }
            projection = try tensor(Names.projection, shape)
        } else {
            projection = nil
        }
    }

    public var vocabularySize: Int { tokenEmbedding.shape[0] }

    /// The pooling position of `ids` under this encoder's rule.
    public func poolingIndex(_ ids: [Int]) -> Int {
        switch config.pooling {
        case .argmax:
            var best = 0
            for (i, id) in ids.enumerated() where id > ids[best] { best = i }
            return best
        case let .firstOf(eos):
            return ids.firstIndex(of: eos) ?? 0
        }
    }

    /// Runs the transformer on one sequence of token ids (at most `config.maxPositions` long).
    public func forward(ids: [Int]) throws -> CLIPTextOutput {
        let l = ids.count, d = config.hiddenSize
        guard l > 0, l <= config.maxPositions else {
            throw TextEncoderError.badInput("\(l) tokens (expected 1...\(config.maxPositions))")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw TextEncoderError.badInput("token id \(bad) outside the vocabulary of \(vocabularySize)")
        }
        // Embeddings: token + absolute position.
        let x = Tensor<Float>(zeros: [1, l, d])
        for (t, id) in ids.enumerated() {
            let row = x.data + t * d, tok = tokenEmbedding.data + id * d, pos = positionEmbedding.data + t * d
            for j in 0..<d { row[j] = tok[j] + pos[j] }
        }
        let h = Tensor<Float>(zeros: [1, l, d])
        let q = Tensor<Float>(zeros: [1, l, d]), k = Tensor<Float>(zeros: [1, l, d]), v = Tensor<Float>(zeros: [1, l, d])
        let attn = Tensor<Float>(zeros: [1, l, d]), proj = Tensor<Float>(zeros: [1, l, d])
        let mid = Tensor<Float>(zeros: [1, l, config.intermediateSize])
        let act = Tensor<Float>(zeros: [1, l, config.intermediateSize])
        var penultimate: Tensor<Float>?
        for (i, layer) in layers.enumerated() {
            _ = LayerNorm.forward(x: x, eps: config.layerNormEps, gamma: layer.norm1.weight, beta: layer.norm1.bias, y: h)
            Linear.forward(x: h, weight: layer.q.weight, bias: layer.q.bias, y: q)
            Linear.forward(x: h, weight: layer.k.weight, bias: layer.k.bias, y: k)
            Linear.forward(x: h, weight: layer.v.weight, bias: layer.v.bias, y: v)
            Attention.forward(q: q, k: k, v: v, heads: config.heads, causal: true, out: attn)
            Linear.forward(x: attn, weight: layer.out.weight, bias: layer.out.bias, y: proj)
            add(proj, into: x)
            _ = LayerNorm.forward(x: x, eps: config.layerNormEps, gamma: layer.norm2.weight, beta: layer.norm2.bias, y: h)
            Linear.forward(x: h, weight: layer.fc1.weight, bias: layer.fc1.bias, y: mid)
            config.activation.forward(x: mid, y: act)
            Linear.forward(x: act, weight: layer.fc2.weight, bias: layer.fc2.bias, y: proj)
            add(proj, into: x)
            if i == layers.count - 2 { penultimate = x.clone().reshaped([l, d]) }
        }
        let last = Tensor<Float>(zeros: [l, d])
        _ = LayerNorm.forward(x: x.reshaped([l, d]), eps: config.layerNormEps,
                              gamma: finalNorm.weight, beta: finalNorm.bias, y: last)
        let pooled = last.batch(poolingIndex(ids)).clone()
        let projected = projection.map {
            Linear.forward(x: pooled.reshaped([1, d]), weight: $0, bias: nil).reshaped([$0.shape[0]])
        }
        return CLIPTextOutput(penultimate: penultimate!, last: last, pooled: pooled, projected: projected)
    }

    private func add(_ y: Tensor<Float>, into x: Tensor<Float>) {
        let xp = x.data, yp = y.data
        for i in 0..<x.count { xp[i] += yp[i] }
    }
}
