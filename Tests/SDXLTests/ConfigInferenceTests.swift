import Foundation
import SafeTensors
import Testing
@testable import SDXL

struct ConfigInferenceTests {
    @Test func fixtureConfigFromEitherLayout() throws {
        let single = try SDXLModel.open(FixturePaths.singleFile)
        let pipeline = try SDXLModel.open(FixturePaths.pipeline)
        let config = try #require(single.unetConfig, "\(single.unetConfigError ?? "")")
        #expect(config == pipeline.unetConfig)
        // What Fixtures/make_fixtures.py builds (see Fixtures/README.md).
        let unetConfig = try #require(pipeline.configs[.unet])
        #expect(config.blockOutChannels == unetConfig["block_out_channels"] as? [Int])
        #expect(config.structure.layersPerBlock == unetConfig["layers_per_block"] as? Int)
        #expect(config.contextDim == unetConfig["cross_attention_dim"] as? Int)
        #expect(config.structure.downDepths == [0, 2, 2])
        #expect(config.structure.midDepth == 2)
        #expect(config.structure.upDepths == [2, 2, 0])
        #expect(config.pooledDim == (unetConfig["projection_class_embeddings_input_dim"] as! Int) - 6 * 256)
        #expect(config.headCounts == unetConfig["attention_head_dim"] as? [Int])
        #expect(single.unetConfig?.headCounts == [1, 1, 2], "without config.json: channels / 64, at least 1")
        #expect(config.useLinearProjection)
    }

    @Test func sdxlBaseShapesGiveSDXLConfig() throws {
        // Shapes of the real SDXL base UNet (docs/formats.md, "Architecture"), without any weights.
        let structure = UNetStructure(levels: 3, layersPerBlock: 2, downDepths: [0, 2, 10], midDepth: 10, upDepths: [10, 2, 0])
        let shapes: [String: [Int]] = [
            "down_blocks.0.resnets.0.conv1.weight": [320, 320, 3, 3],
            "down_blocks.1.resnets.0.conv1.weight": [640, 320, 3, 3],
            "down_blocks.2.resnets.0.conv1.weight": [1280, 640, 3, 3],
            "conv_in.weight": [320, 4, 3, 3], "conv_out.weight": [4, 320, 3, 3],
            "time_embedding.linear_1.weight": [1280, 320], "add_embedding.linear_1.weight": [1280, 2816],
            "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": [640, 2048],
            "down_blocks.1.attentions.0.proj_in.weight": [640, 640],
        ]
        let config = try UNetConfig.infer(structure: structure, shape: { shapes[$0] })
        #expect(config.blockOutChannels == [320, 640, 1280])
        #expect(config.headCounts == [5, 10, 20])
        #expect(config.contextDim == 2048)
        #expect(config.pooledDim == 1280)
        #expect(config.timeEmbedDim == 1280)
    }

    @Test func notAPipelineFolder() {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-empty-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        #expect(throws: SDXLModel.OpenError.self) { try SDXLModel.open(folder.path) }
    }
}
