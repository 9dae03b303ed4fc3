import Foundation
import SafeTensors
import Testing
@testable import SDXL

/// The single-file and diffusers fixtures hold the same weights, so the key map must pair every tensor
/// of one with the equal tensor of the other.
struct KeyMapTests {
    @Test func singleFileAndPipelineAgreeTensorByTensor() throws {
        let single = try SDXLModel.open(FixturePaths.singleFile)
        let pipeline = try SDXLModel.open(FixturePaths.pipeline)
        #expect(single.layout == .singleFile)
        #expect(pipeline.layout == .diffusers)
        for component in Component.allCases {
            let a = single.tensorNames(component), b = pipeline.tensorNames(component)
            #expect(!a.isEmpty, "\(component) missing from the single file")
            let onlySingle = Set(a).subtracting(b).sorted(), onlyPipeline = Set(b).subtracting(a).sorted()
            #expect(onlySingle.isEmpty && onlyPipeline.isEmpty,
                    "\(component): \(onlySingle.count) names only in the single file (\(onlySingle.prefix(3))), \(onlyPipeline.count) only in the pipeline (\(onlyPipeline.prefix(3)))")
            for name in Set(a).intersection(b) {
                #expect(single.shape(component, name) == pipeline.shape(component, name), "\(component).\(name) shape")
                let x = try single.floats(component, name), y = try pipeline.floats(component, name)
                let same = x == y
                #expect(same, "\(component).\(name): values differ")
            }
        }
    }

    @Test func unetNamesRoundTripBothWays() throws {
        let single = try SafeTensorsFile.open(FixturePaths.singleFile)
        let names = single.tensors.compactMap { $0.name.hasPrefix("model.diffusion_model.") ? String($0.name.dropFirst(22)) : nil }
        let structure = try #require(UNetStructure.fromSingleFile(names))
        for name in names {
            let diffusers = try #require(UNetNames.toDiffusers(name, structure: structure), "\(name) has no diffusers name")
            #expect(UNetNames.toSingleFile(diffusers, structure: structure) == name)
        }
    }

    @Test func sdxlBaseBlockMapping() {
        // docs/formats.md, "Block mapping", for the real SDXL structure.
        let sdxl = UNetStructure(levels: 3, layersPerBlock: 2, downDepths: [0, 2, 10], midDepth: 10, upDepths: [10, 2, 0])
        let cases = [
            ("input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"),
            ("input_blocks.8.1.proj_in.weight", "down_blocks.2.attentions.1.proj_in.weight"),
            ("input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"),
            ("input_blocks.6.0.op.bias", "down_blocks.1.downsamplers.0.conv.bias"),
            ("input_blocks.1.0.in_layers.2.weight", "down_blocks.0.resnets.0.conv1.weight"),
            ("input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight"),
            ("middle_block.1.transformer_blocks.9.attn2.to_k.weight", "mid_block.attentions.0.transformer_blocks.9.attn2.to_k.weight"),
            ("middle_block.2.emb_layers.1.weight", "mid_block.resnets.1.time_emb_proj.weight"),
            ("output_blocks.0.1.transformer_blocks.0.ff.net.2.weight", "up_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight"),
            ("output_blocks.5.1.norm.weight", "up_blocks.1.attentions.2.norm.weight"),
            ("output_blocks.2.2.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"),
            ("output_blocks.5.2.conv.weight", "up_blocks.1.upsamplers.0.conv.weight"),
            ("output_blocks.8.0.out_layers.3.weight", "up_blocks.2.resnets.2.conv2.weight"),
            ("label_emb.0.2.weight", "add_embedding.linear_2.weight"),
            ("time_embed.0.bias", "time_embedding.linear_1.bias"),
            ("out.0.weight", "conv_norm_out.weight"),
            ("out.2.bias", "conv_out.bias"),
        ]
        for (sgm, diffusers) in cases {
            #expect(UNetNames.toDiffusers(sgm, structure: sdxl) == diffusers, "\(sgm)")
            #expect(UNetNames.toSingleFile(diffusers, structure: sdxl) == sgm, "\(diffusers)")
        }
        #expect(UNetNames.toDiffusers("input_blocks.1.1.proj_in.weight", structure: sdxl) == nil, "level 0 has no attention in SDXL")
    }

    @Test func openCLIPSplitAndTranspose() throws {
        let single = try SDXLModel.open(FixturePaths.singleFile)
        let q = try #require(single.locate(.textEncoder2, "text_model.encoder.layers.0.self_attn.q_proj.weight"))
        #expect(q.mapping?.singleFileName == "transformer.resblocks.0.attn.in_proj_weight")
        #expect(q.mapping?.transform == .rows(index: 0, count: 3))
        let projection = try #require(single.locate(.textEncoder2, "text_projection.weight"))
        #expect(projection.mapping?.transform == .transpose)
    }
}
