/// The UNet configuration, inferred from weight shapes (stable-diffusion.cpp's `detect_from_weights` idea);
/// what shapes cannot tell (head size, time-id embedding width) comes from `config.json` or SDXL's constants.
public struct UNetConfig: Equatable, Sendable, Codable {
    public var structure: UNetStructure
    public var blockOutChannels: [Int]
    public var inChannels: Int
    public var outChannels: Int
    /// Width of the time embedding MLP (SDXL: 1280).
    public var timeEmbedDim: Int
    /// Width of the text context the cross-attention reads (SDXL: 2048 = 768 + 1280).
    public var contextDim: Int
    /// Sinusoid width per micro-conditioning id (SDXL: 256; six ids).
    public var addTimeEmbedDim: Int
    /// Width of the pooled text embedding (SDXL: 1280).
    public var pooledDim: Int
    /// Attention heads per level (SDXL: [5, 10, 20]; head size 64).
    public var headCounts: [Int]
    public var useLinearProjection: Bool
    public var normGroups: Int

    public static let sdxlHeadDim = 64
    public static let sdxlAddTimeEmbedDim = 256

    public enum InferenceError: Error, CustomStringConvertible, Equatable {
        case missingTensor(String)
        case notSDXL(String)

        public var description: String {
            switch self {
            case let .missingTensor(name): return "not an SDXL-architecture UNet: tensor '\(name)' is missing"
            case let .notSDXL(why): return "not an SDXL-architecture UNet: \(why)"
            }
        }
    }

    /// Infers the configuration from diffusers-named shapes; `config` is the parsed `unet/config.json` if any.
    public static func infer(structure: UNetStructure, shape: (String) -> [Int]?, config: [String: Any]? = nil) throws -> UNetConfig {
        func need(_ name: String) throws -> [Int] {
            guard let s = shape(name) else { throw InferenceError.missingTensor(name) }
            return s
        }
        let channels = try (0..<structure.levels).map { try need("down_blocks.\($0).resnets.0.conv1.weight")[0] }
        let convIn = try need("conv_in.weight")
        let convOut = try need("conv_out.weight")
        let time1 = try need("time_embedding.linear_1.weight")
        guard let add1 = shape("add_embedding.linear_1.weight") else {
            throw InferenceError.notSDXL("no text-time add embedding (add_embedding / label_emb)")
        }
        guard let level = structure.downDepths.firstIndex(where: { $0 > 0 }) else {
            throw InferenceError.notSDXL("no cross-attention blocks")
        }
        let toK = try need("down_blocks.\(level).attentions.0.transformer_blocks.0.attn2.to_k.weight")
        let projIn = try need("down_blocks.\(level).attentions.0.proj_in.weight")

        let addTime = config?["addition_time_embed_dim"] as? Int ?? sdxlAddTimeEmbedDim
        guard add1.count == 2, add1[1] > 6 * addTime else {
            throw InferenceError.notSDXL("add embedding input \(add1) is not six time ids × \(addTime) plus a pooled embedding")
        }
        let heads: [Int]
        if let counts = config?["attention_head_dim"] as? [Int], counts.count == channels.count {
            heads = counts  // SDXL's config names head counts "attention_head_dim"
        } else if let count = config?["attention_head_dim"] as? Int {
            heads = Array(repeating: count, count: channels.count)
        } else {
            heads = channels.map { max(1, $0 / sdxlHeadDim) }
        }
        return UNetConfig(structure: structure, blockOutChannels: channels, inChannels: convIn[1], outChannels: convOut[0],
                          timeEmbedDim: time1[0], contextDim: toK[1], addTimeEmbedDim: addTime, pooledDim: add1[1] - 6 * addTime,
                          headCounts: heads, useLinearProjection: projIn.count == 2,
                          normGroups: config?["norm_num_groups"] as? Int ?? 32)
    }
}
