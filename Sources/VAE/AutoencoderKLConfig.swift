import Foundation

/// Hyperparameters of an AutoencoderKL (diffusers naming), from config.json when present, otherwise
/// inferred from the weight shapes with SDXL's constants for what shapes cannot tell
/// (32 GroupNorm groups, scaling factor 0.13025).
public struct AutoencoderKLConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var latentChannels: Int
    /// Channels per resolution level, highest resolution first (SDXL: 128, 256, 512, 512).
    public var blockOutChannels: [Int]
    /// Resnets per encoder level; decoder levels have one more.
    public var layersPerBlock: Int
    public var groups: Int
    /// GroupNorm epsilon; diffusers fixes it at 1e-6 for every VAE norm (it is not in config.json).
    public var eps: Double
    /// Latents are `sample · scalingFactor` for the UNet and `latents / scalingFactor` for the decoder.
    public var scalingFactor: Float
    public var useQuantConv: Bool
    public var usePostQuantConv: Bool
    public var midBlockAttention: Bool

    public init(inChannels: Int = 3, outChannels: Int = 3, latentChannels: Int = 4,
                blockOutChannels: [Int] = [128, 256, 512, 512], layersPerBlock: Int = 2, groups: Int = 32,
                eps: Double = 1e-6, scalingFactor: Float = 0.13025, useQuantConv: Bool = true,
                usePostQuantConv: Bool = true, midBlockAttention: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.latentChannels = latentChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.groups = groups
        self.eps = eps
        self.scalingFactor = scalingFactor
        self.useQuantConv = useQuantConv
        self.usePostQuantConv = usePostQuantConv
        self.midBlockAttention = midBlockAttention
    }

    /// Image pixels per latent pixel along each side (8 for SDXL): one halving per level but the last.
    public var downscaleFactor: Int { 1 << max(0, blockOutChannels.count - 1) }

    /// SDXL's scaling factor, used when no config.json says otherwise.
    public static let sdxlScalingFactor: Float = 0.13025

    /// The configuration of the VAE in `source`: shapes give the sizes; config.json, when present, gives
    /// groups and scaling factor and must agree with the shapes.
    public static func infer(_ source: VAEWeightSource) throws -> AutoencoderKLConfig {
        let path = source.path
        func shape(_ name: String, rank: Int) throws -> [Int] {
            guard let s = source.shape(name) else { throw VAEError.missingWeight(path: path, name: name) }
            guard s.count >= rank else { throw VAEError.badShape(path: path, name: name, expected: Array(repeating: -1, count: rank), got: s) }
            return s
        }
        let convIn = try shape(VAEPaths.encoderConvIn, rank: 4)
        var blocks: [Int] = []
        while let s = source.shape(VAEPaths.encoderResnet(blocks.count, 0) + "conv1.weight"), s.count == 4 { blocks.append(s[0]) }
        guard !blocks.isEmpty else { throw VAEError.missingWeight(path: path, name: VAEPaths.encoderResnet(0, 0) + "conv1.weight") }
        var layers = 0
        while source.has(VAEPaths.encoderResnet(0, layers) + "conv1.weight") { layers += 1 }
        let decoderIn = try shape(VAEPaths.decoderConvIn, rank: 4)
        let decoderOut = try shape(VAEPaths.decoderConvOut, rank: 4)
        var config = AutoencoderKLConfig(
            inChannels: convIn[1], outChannels: decoderOut[0], latentChannels: decoderIn[1],
            blockOutChannels: blocks, layersPerBlock: layers,
            useQuantConv: source.has("quant_conv.weight"), usePostQuantConv: source.has("post_quant_conv.weight"),
            midBlockAttention: source.has(VAEPaths.attention("encoder") + "to_q.weight"))
        if let json = source.config { try config.apply(json, path: path) }
        guard config.groups > 0, config.blockOutChannels.allSatisfy({ $0 % config.groups == 0 }) else {
            throw VAEError.badConfig(path: path, reason: "channels \(config.blockOutChannels) do not split into \(config.groups) groups")
        }
        return config
    }

    /// Takes what only config.json knows and checks that the rest agrees with the weights.
    private mutating func apply(_ json: [String: Any], path: String) throws {
        if let groups = json["norm_num_groups"] as? Int { self.groups = groups }
        if let scale = json["scaling_factor"] as? Double { scalingFactor = Float(scale) }
        if let act = json["act_fn"] as? String, act != "silu" {
            throw VAEError.badConfig(path: path, reason: "unsupported act_fn '\(act)' (only silu)")
        }
        for key in ["shift_factor", "latents_mean", "latents_std"] where json[key].map({ !($0 is NSNull) }) ?? false {
            throw VAEError.badConfig(path: path, reason: "'\(key)' is set: not an SDXL-style VAE")
        }
        for (key, types) in [("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")] {
            if let list = json[key] as? [String], list.contains(where: { $0 != types }) {
                throw VAEError.badConfig(path: path, reason: "unsupported \(key) \(list) (only \(types))")
            }
        }
        let checks: [(String, Int?, Int)] = [
            ("in_channels", json["in_channels"] as? Int, inChannels),
            ("out_channels", json["out_channels"] as? Int, outChannels),
            ("latent_channels", json["latent_channels"] as? Int, latentChannels),
            ("layers_per_block", json["layers_per_block"] as? Int, layersPerBlock),
        ]
        for (key, configured, found) in checks {
            if let configured, configured != found {
                throw VAEError.badConfig(path: path, reason: "config.json says \(key) \(configured), the weights hold \(found)")
            }
        }
        if let channels = json["block_out_channels"] as? [Int], channels != blockOutChannels {
            throw VAEError.badConfig(path: path, reason: "config.json says block_out_channels \(channels), the weights hold \(blockOutChannels)")
        }
    }
}
