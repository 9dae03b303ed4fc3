import Foundation
import SafeTensors
import TestSupport
import Testing
@testable import Adapters

/// Base architectures: the fixtures made by each base's real tools (Fixtures/fixturegen/bases.py), the
/// rules on files built here where a rule needs shapes the fixtures do not have, and the name maps.
struct BaseIdentificationTests {
    static func bases(_ name: String) -> String { Fixtures.path("adapters/bases/\(name).safetensors") }

    @Test(arguments: [
        ("sd1-peft", BaseArchitecture.sd1), ("sd1-kohya", .sd1), ("sd2-peft", .sd2), ("sd2-kohya", .sd2),
        ("sd3-peft", .sd3), ("sd3-kohya", .sd3), ("flux-peft", .flux1), ("flux-double-peft", .flux1), ("flux-kohya", .flux1),
    ])
    func fixturesOfEachBase(file: String, base: BaseArchitecture) throws {
        let identity = try FileIdentifier.identify(Self.bases(file))
        #expect(identity.base == base.rawValue, "\(file): \(identity.baseNote ?? "")")
        #expect(identity.unknownKeys.isEmpty, "\(file): \(identity.unknownKeys.prefix(3))")
        let adapter = try AdapterReader.read(Self.bases(file))
        #expect(adapter.base.base == base)
        #expect(adapter.unknownKeys.isEmpty)
    }

    @Test func sdxlFixturesStaySDXL() throws {
        for path in [Fixtures.adapters["peft"]!, Fixtures.adapters["peft-flat-te"]!, Fixtures.adapters["kohya"]!, Fixtures.adapters["attn-procs"]!,
                     Fixtures.adapters["official-ortho"]!, "adapters/lycoris/loha.safetensors", "adapters/lycoris/lokr.safetensors"] {
            let identity = try FileIdentifier.identify(Fixtures.path(path))
            #expect(identity.base == "sdxl", "\(path)")
            #expect(identity.derivative == nil && identity.baseNote == nil, "\(path)")
        }
    }

    @Test func derivativesAndTheirAbsence() throws {
        for (file, derivative) in [("sdxl-pony", "pony"), ("sdxl-illustrious", "illustrious"), ("sdxl-noobai", "noobai")] {
            let identity = try FileIdentifier.identify(Self.bases(file))
            #expect(identity.base == "sdxl" && identity.derivative == derivative, "\(file)")
        }
        #expect(try FileIdentifier.identify(Self.bases("sdxl-base")).derivative == nil)
    }

    @Test func aLanguageModelLoRAHasNoBase() throws {
        let identity = try FileIdentifier.identify(Self.bases("llama-peft"))
        #expect(identity.kind == .lora)
        #expect(identity.base == nil)
        #expect(identity.baseNote?.contains("no module is a layer of") == true)
    }

    /// kohya and PEFT spellings of one adapter read to the same canonical modules (SD 1.x/2.x tables).
    @Test(arguments: ["sd1", "sd2"])
    func kohyaAndPeftNamesMeet(base: String) throws {
        let kohya = try AdapterReader.read(Self.bases("\(base)-kohya")), peft = try AdapterReader.read(Self.bases("\(base)-peft"))
        #expect(Set(kohya.modules.map(\.name)) == Set(peft.modules.map(\.name)))
        #expect(kohya.modules.contains { $0.name == "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k" })
        #expect(kohya.modules.contains { $0.name == "text_encoder.text_model.encoder.layers.0.self_attn.q_proj" })
        for module in kohya.modules { #expect(BaseNames.kohyaName(module.name, base: kohya.base.base)?.hasPrefix("lora_") == true) }
    }

    @Test func transformerNameMaps() throws {
        let flux = try AdapterReader.read(Self.bases("flux-kohya"))
        #expect(Set(flux.modules.map(\.name)) == [
            "transformer.transformer_blocks.0.attn.to_qkv", "transformer.transformer_blocks.0.attn.to_out.0",
            "transformer.transformer_blocks.0.attn.to_added_qkv", "transformer.transformer_blocks.0.attn.to_add_out",
            "transformer.single_transformer_blocks.0.linear1", "transformer.single_transformer_blocks.0.proj_out",
        ])
        let qkv = try #require(flux.modules.first { $0.name.hasSuffix("attn.to_qkv") })
        #expect(qkv.outFeatures == 3 * 3072 && qkv.inFeatures == 3072)
        #expect(BaseNames.peftName(qkv.name, base: .flux1) == nil)
        let peft = try AdapterReader.read(Self.bases("flux-peft"))
        #expect(peft.modules.contains { $0.name == "transformer.single_transformer_blocks.0.proj_mlp" })
        let sd3 = try AdapterReader.read(Self.bases("sd3-kohya"))
        #expect(sd3.modules.contains { $0.name == "transformer.transformer_blocks.0.attn.to_add_out" })
        #expect(!sd3.modules.contains { $0.name == "transformer.transformer_blocks.1.attn.to_add_out" })
    }

    // MARK: rules on files built here (kohya names, [rank, in] downs, [out, rank] ups)

    static func identify(_ modules: [(String, Int, Int)], metadata: [String: String] = [:]) throws -> FileIdentity {
        var tensors: [(String, DType, [Int], [UInt8])] = []
        for (name, width, out) in modules {
            tensors.append((name + ".lora_down.weight", .f16, [2, width], SafeTensorsFixture.floats(Array(repeating: 0.01, count: 2 * width), .f16)))
            tensors.append((name + ".lora_up.weight", .f16, [out, 2], SafeTensorsFixture.floats(Array(repeating: 0.01, count: 2 * out), .f16)))
        }
        let file = try SafeTensorsFile.parse(bytes: try SafeTensorsFixture.file(tensors, metadata: metadata), name: "built")
        return try FileIdentifier.identify(file: file, path: "built")
    }

    @Test func crossAttentionWidthDecidesTheUNetBase() throws {
        let k = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
        #expect(try Self.identify([(k, 768, 640)]).base == "sd1")
        #expect(try Self.identify([(k, 1024, 640)]).base == "sd2")
        #expect(try Self.identify([(k, 2048, 640)]).base == "sdxl")
        // SD 1.x/2.x structure (attention at the first level) with a width neither has: unknown, and why.
        let odd = try Self.identify([("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 4096, 320)])
        #expect(odd.base == nil && odd.baseNote?.contains("cross-attention width 4096") == true)
        // SDXL's structure decides for SDXL-architecture models of other widths (the tiny fixture's is 128).
        #expect(try Self.identify([(k, 128, 64)]).base == "sdxl")
    }

    @Test func firstLevelAttentionWithoutWidthIsUndecided() throws {
        let identity = try Self.identify([("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320)])
        #expect(identity.base == nil)
        #expect(identity.baseNote?.contains("SD 1.x or 2.x") == true)
        // …until metadata says which.
        let named = try Self.identify([("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320)],
                                      metadata: ["ss_base_model_version": "sd_v2"])
        #expect(named.base == "sd2" && named.baseNote == nil)
    }

    @Test func transformerWidths() throws {
        let q = "transformer.transformer_blocks.0.attn.to_q"
        func peft(_ width: Int) throws -> FileIdentity {
            let tensors: [(String, DType, [Int], [UInt8])] = [
                (q + ".lora_A.weight", .f16, [2, width], SafeTensorsFixture.floats(Array(repeating: 0.01, count: 2 * width), .f16)),
                (q + ".lora_B.weight", .f16, [width, 2], SafeTensorsFixture.floats(Array(repeating: 0.01, count: 2 * width), .f16)),
            ]
            let file = try SafeTensorsFile.parse(bytes: try SafeTensorsFixture.file(tensors), name: "built")
            return try FileIdentifier.identify(file: file, path: "built")
        }
        #expect(try peft(3072).base == "flux1")
        #expect(try peft(2432).base == "sd3")
        #expect(try peft(1536).base == "sd3")
        let other = try peft(64)
        #expect(other.base == nil && other.baseNote?.contains("width 64") == true)
    }

    @Test func tensorsWinOverMetadataAndSaySo() throws {
        let identity = try Self.identify([("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", 768, 640)],
                                         metadata: ["ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "ponyDiffusionV6XL.safetensors"])
        #expect(identity.base == "sd1")
        #expect(identity.derivative == nil)
        #expect(identity.baseNote == "metadata says SDXL (ss_base_model_version sdxl_base_v1-0), the tensors say SD 1.x (cross-attention width 768)")
    }
}
