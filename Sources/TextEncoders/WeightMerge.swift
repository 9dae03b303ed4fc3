import Engine

extension CLIPTextEncoder {
    /// The Linear layers an adapter may adapt, by module path inside the encoder
    /// (`text_model.encoder.layers.N.self_attn.q_proj|k_proj|v_proj|out_proj`, `…mlp.fc1|fc2`), with
    /// their weight shapes [out, in].
    public var linearShapes: [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for i in layers.indices {
            for (leaf, path) in Self.leaves { shapes[Names.layer(i) + leaf] = layers[i][keyPath: path].weight.shape }
        }
        return shapes
    }

    /// W ← W + delta for the Linear at module path `path`; delta [out, in] row-major. The sum goes into a
    /// new tensor, so weights shared with the checkpoint stay unchanged; every later forward uses it.
    public func addToWeight(_ path: String, delta: [Float]) throws {
        guard let (i, keyPath) = Self.locate(path, layers: layers.count) else {
            throw TextEncoderError.badInput("\(component.rawValue) has no Linear '\(path)'")
        }
        let old = layers[i][keyPath: keyPath]
        guard delta.count == old.weight.count else {
            throw TextEncoderError.badInput("\(component.rawValue) '\(path)': \(delta.count) values for a weight of shape \(old.weight.shape)")
        }
        let w = Tensor<Float>(shape: old.weight.shape, values: old.weight.array)
        for j in 0..<w.count { w.data[j] += delta[j] }
        layers[i][keyPath: keyPath] = Affine(weight: w, bias: old.bias)
    }

    static var leaves: [(String, WritableKeyPath<Layer, Affine>)] {
        [("self_attn.q_proj", \.q), ("self_attn.k_proj", \.k), ("self_attn.v_proj", \.v), ("self_attn.out_proj", \.out),
         ("mlp.fc1", \.fc1), ("mlp.fc2", \.fc2)]
    }

    /// `text_model.encoder.layers.N.<leaf>` → (N, the layer's field).
    static func locate(_ path: String, layers count: Int) -> (Int, WritableKeyPath<Layer, Affine>)? {
        let prefix = "text_model.encoder.layers."
        guard path.hasPrefix(prefix) else { return nil }
        let rest = path.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]), i >= 0, i < count else { return nil }
        let leaf = String(rest[rest.index(after: dot)...])
        return leaves.first { $0.0 == leaf }.map { (i, $0.1) }
    }
}
