import Foundation
import SafeTensors
import TestSupport
import Testing
@testable import Adapters

/// Each reader against ΔW computed by PyTorch (float64) for files written by the real tools.
struct ReaderTests {
    static let timesteps: [String: [Double]] = [
        "official-ortho": [0, 1, 250, 500, 750, 999], "official-vanilla": [0, 1, 250, 500, 750, 999],
    ]

    @Test(arguments: ["peft", "peft-flat-te", "kohya", "attn-procs", "official-ortho", "official-vanilla"])
    func deltasMatchReference(_ id: String) throws {
        let adapter = try AdapterReader.read(Fixtures.path(Fixtures.adapters[id]!))
        let referenceID = id == "peft-flat-te" ? "peft" : id
        let references = Fixtures.deltas.tensors.filter { $0.name.hasPrefix(referenceID + "/") && $0.name.hasSuffix("/probe") }
        let expectedModules = Set(references.map { $0.name.split(separator: "/")[1] }.map(String.init))
        #expect(Set(adapter.modules.map(\.name)) == expectedModules, "\(id): module names")
        #expect(adapter.unknownKeys.isEmpty, "\(id): unknown keys \(adapter.unknownKeys.prefix(3))")
        var worst = 0.0, compared = 0
        for (index, module) in adapter.modules.enumerated() {
            for t in Self.timesteps[id] ?? [0] {
                let key = "\(referenceID)/\(module.name)/t\(Int(t))"
                let delta = try adapter.delta(index, at: Self.timesteps[id] == nil ? nil : t)
                let probe = try Fixtures.deltas.floats("probe/in\(module.inFeatures)")
                let error = scaleRelative(apply(delta, out: module.outFeatures, in: module.inFeatures, to: probe),
                                               try Fixtures.deltas.floats(key + "/probe"))
                if let full = Fixtures.deltas.header.tensor(named: key) {
                    worst = max(worst, scaleRelative(delta, try Fixtures.deltas.floats(full)))
                }
                worst = max(worst, error)
                compared += 1
            }
        }
        print("\(id): \(compared) module×timestep deltas, worst scale-relative error \(worst)")
        #expect(worst <= 1e-6)
        #expect(compared >= adapter.modules.count)
    }

    @Test func officialScheduleFromHparams() throws {
        let ortho = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        #expect(ortho.format == .tloraOfficial)
        #expect(ortho.method == .tlora)
        #expect(ortho.schedule == RankSchedule(maxRank: 8, minRank: 4, rankAlpha: 1))
        let vanilla = try AdapterReader.read(Fixtures.path("adapters/official-vanilla"))
        #expect(vanilla.method == .vanillaTlora)
        #expect(vanilla.schedule == RankSchedule(maxRank: 8, minRank: 4, rankAlpha: 0.5))
    }

    @Test func officialWithoutHparamsNeedsMinRank() throws {
        let path = Fixtures.path("adapters/official-ortho-nohparams/pytorch_lora_weights.safetensors")
        #expect(throws: AdapterError.self) { try AdapterReader.read(path) }
        do { _ = try AdapterReader.read(path) } catch let error as AdapterError {
            #expect(error.message.contains("--min-rank"))
            #expect(error.message.contains("silently assumes min rank 1"))
        }
        let withFlags = try AdapterReader.read(path, flags: ScheduleFlags(minRank: 4))
        #expect(withFlags.schedule == RankSchedule(maxRank: 8, minRank: 4, rankAlpha: 1))
        let reference = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        #expect(try withFlags.delta(0, at: 500) == reference.delta(0, at: 500))
    }

    @Test func kohyaSGMAndDiffusersSpellingsAgree() {
        let canonical = "unet.down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k"
        #expect(ModuleNames.kohyaName(canonical) == "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k")
        #expect(ModuleNames.canonical(fileName: "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k", format: .kohya) == canonical)
        #expect(ModuleNames.canonical(fileName: "lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_k", format: .kohya) == canonical)
        #expect(ModuleNames.canonical(fileName: "lora_unet_middle_block_1_transformer_blocks_9_attn1_to_out_0", format: .kohya)
                == "unet.mid_block.attentions.0.transformer_blocks.9.attn1.to_out.0")
        #expect(ModuleNames.canonical(fileName: "lora_te2_text_model_encoder_layers_31_mlp_fc2", format: .kohya)
                == "text_encoder_2.text_model.encoder.layers.31.mlp.fc2")
        #expect(ModuleNames.officialName(canonical) == "down_blocks.1.attentions.0.transformer_blocks.1.attn2.processor.to_k_lora")
        #expect(ModuleNames.canonical(fileName: "text_encoder.text_model.encoder.layers.0.self_attn.to_out_lora", format: .attnProcs)
                == "text_encoder.text_model.encoder.layers.0.self_attn.out_proj")
        // SDXL base counts: 722 UNet modules kohya adapts (70 blocks × 10 + 11 × 2 proj) are all known.
        let sdxlBlocks = [("down_blocks.1.attentions", 2, 2), ("down_blocks.2.attentions", 2, 10), ("up_blocks.0.attentions", 3, 10), ("up_blocks.1.attentions", 3, 2)]
        var count = 0
        for (block, attentions, depth) in sdxlBlocks {
            for a in 0..<attentions {
                for name in ["proj_in", "proj_out"] where ModuleNames.kohyaName("unet.\(block).\(a).\(name)") != nil { count += 1 }
                for t in 0..<depth { for leaf in ModuleNames.attentionLeaves where ModuleNames.kohyaName("unet.\(block).\(a).transformer_blocks.\(t).\(leaf)") != nil { count += 1 } }
            }
        }
        for name in ["proj_in", "proj_out"] where ModuleNames.kohyaName("unet.mid_block.attentions.0.\(name)") != nil { count += 1 }
        for t in 0..<10 { for leaf in ModuleNames.attentionLeaves where ModuleNames.kohyaName("unet.mid_block.attentions.0.transformer_blocks.\(t).\(leaf)") != nil { count += 1 } }
        #expect(count == 722)
    }
}
