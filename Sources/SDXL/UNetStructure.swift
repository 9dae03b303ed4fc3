/// The block structure of an SDXL-architecture UNet: what the key map and the model need before shapes.
/// Read from tensor names in either layout, so SDXL base and smaller models of the same architecture load alike.
public struct UNetStructure: Equatable, Sendable, Codable {
    /// Resolution levels (SDXL: 3).
    public var levels: Int
    /// Resnets per down block (SDXL: 2); up blocks have one more.
    public var layersPerBlock: Int
    /// Transformer blocks per attention of each down level; 0 where the level has no attention (SDXL: [0, 2, 10]).
    public var downDepths: [Int]
    /// Transformer blocks of the mid-block attention (SDXL: 10; 0 if none).
    public var midDepth: Int
    /// Transformer blocks per attention of each up block (SDXL: [10, 2, 0]).
    public var upDepths: [Int]

    public init(levels: Int, layersPerBlock: Int, downDepths: [Int], midDepth: Int, upDepths: [Int]) {
        self.levels = levels
        self.layersPerBlock = layersPerBlock
        self.downDepths = downDepths
        self.midDepth = midDepth
        self.upDepths = upDepths
    }

    /// From diffusers names (`down_blocks.1.attentions.0.transformer_blocks.3.…`).
    public static func fromDiffusers(_ names: some Sequence<String>) -> UNetStructure? {
        var downResnets: [Int: Int] = [:], downDepth: [Int: Int] = [:], upDepth: [Int: Int] = [:]
        var midDepth = 0, upLevels = 0
        for name in names {
            let p = name.split(separator: ".", omittingEmptySubsequences: false)
            if p.count > 3, p[0] == "down_blocks", let i = Int(p[1]) {
                if p[2] == "resnets", let j = Int(p[3]) { downResnets[i] = max(downResnets[i] ?? 0, j + 1) }
                if p[2] == "attentions", p.count > 5, p[4] == "transformer_blocks", let t = Int(p[5]) {
                    downDepth[i] = max(downDepth[i] ?? 0, t + 1)
                }
            } else if p.count > 5, p[0] == "up_blocks", let i = Int(p[1]) {
                upLevels = max(upLevels, i + 1)
                if p[2] == "attentions", p[4] == "transformer_blocks", let t = Int(p[5]) { upDepth[i] = max(upDepth[i] ?? 0, t + 1) }
            } else if p.count > 4, p[0] == "mid_block", p[1] == "attentions", p[3] == "transformer_blocks", let t = Int(p[4]) {
                midDepth = max(midDepth, t + 1)
            } else if p.count > 2, p[0] == "up_blocks", let i = Int(p[1]) {
                upLevels = max(upLevels, i + 1)
            }
        }
        guard let levels = downResnets.keys.max().map({ $0 + 1 }), let layers = downResnets[0] else { return nil }
        return UNetStructure(levels: levels, layersPerBlock: layers,
                             downDepths: (0..<levels).map { downDepth[$0] ?? 0 }, midDepth: midDepth,
                             upDepths: (0..<max(levels, upLevels)).map { upDepth[$0] ?? 0 })
    }

    /// From single-file names without the `model.diffusion_model.` prefix (`input_blocks.4.1.transformer_blocks.0…`).
    public static func fromSingleFile(_ names: some Sequence<String>) -> UNetStructure? {
        var maxInput = -1, firstDownsample: Int?, maxOutput = -1
        var inputDepth: [Int: Int] = [:], outputDepth: [Int: Int] = [:], midDepth = 0
        for name in names {
            let p = name.split(separator: ".", omittingEmptySubsequences: false)
            guard p.count > 2 else { continue }
            if p[0] == "input_blocks", let k = Int(p[1]) {
                maxInput = max(maxInput, k)
                if p[2] == "0", p.count > 3, p[3] == "op" { firstDownsample = min(firstDownsample ?? k, k) }
                if p[2] == "1", p.count > 4, p[3] == "transformer_blocks", let t = Int(p[4]) { inputDepth[k] = max(inputDepth[k] ?? 0, t + 1) }
            } else if p[0] == "output_blocks", let k = Int(p[1]) {
                maxOutput = max(maxOutput, k)
                if p[2] == "1", p.count > 4, p[3] == "transformer_blocks", let t = Int(p[4]) { outputDepth[k] = max(outputDepth[k] ?? 0, t + 1) }
            } else if p[0] == "middle_block", p[1] == "1", p[2] == "transformer_blocks", p.count > 3, let t = Int(p[3]) {
                midDepth = max(midDepth, t + 1)
            }
        }
        guard maxInput >= 1 else { return nil }
        let stride = firstDownsample ?? (maxInput + 1)  // layersPerBlock + 1
        let layers = stride - 1
        guard layers >= 1 else { return nil }
        let levels = maxInput / stride + 1
        let upStride = layers + 1
        let upLevels = max(levels, maxOutput / upStride + 1)
        return UNetStructure(levels: levels, layersPerBlock: layers,
                             downDepths: (0..<levels).map { inputDepth[$0 * stride + 1] ?? 0 }, midDepth: midDepth,
                             upDepths: (0..<upLevels).map { outputDepth[$0 * upStride] ?? 0 })
    }
}
