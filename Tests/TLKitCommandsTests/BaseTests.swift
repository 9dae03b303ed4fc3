import Foundation
import Testing

/// Base architectures through the CLI: what `inspect` reports, what the commands that need SDXL refuse,
/// and the layout-agnostic commands on other bases (fixtures: Fixtures/fixturegen/bases.py).
struct BaseTests {
    static func bases(_ name: String) -> String { CLI.fixture("adapters/bases/\(name).safetensors") }

    static func inspect(_ path: String) throws -> [String: Any] {
        let result = try CLI.run(["inspect", "--json", path])
        #expect(result.status == 0, "\(result.stderr)")
        return CLI.json(try #require(result.stdoutLines.first))
    }

    @Test(arguments: [
        ("sd1-peft", "sd1"), ("sd1-kohya", "sd1"), ("sd2-peft", "sd2"), ("sd2-kohya", "sd2"),
        ("sd3-peft", "sd3"), ("sd3-kohya", "sd3"), ("flux-peft", "flux1"), ("flux-double-peft", "flux1"), ("flux-kohya", "flux1"),
    ])
    func inspectNamesTheBase(file: String, base: String) throws {
        let object = try Self.inspect(Self.bases(file))
        #expect(object["kind"] as? String == "lora")
        #expect(object["base"] as? String == base, "\(file)")
        #expect(object["derivative"] == nil && object["base_note"] == nil)
        #expect(object["unknown_keys"] == nil, "every module of \(file) is in the \(base) name map")
    }

    @Test(arguments: [("sdxl-pony", "pony"), ("sdxl-illustrious", "illustrious"), ("sdxl-noobai", "noobai")])
    func derivativesFromMetadata(file: String, derivative: String) throws {
        let object = try Self.inspect(Self.bases(file))
        #expect(object["base"] as? String == "sdxl")
        #expect(object["derivative"] as? String == derivative)
        let human = try CLI.run(["inspect", Self.bases(file)])
        #expect(human.stdout.contains("base sdxl (\(derivative))"))
    }

    @Test func sdxlReportsGainNoField() throws {
        for path in [Self.bases("sdxl-base"), CLI.fixture("adapters/kohya/kohya_from_peft.safetensors"), CLI.fixture("adapters/peft")] {
            let object = try Self.inspect(path)
            #expect(object["base"] as? String == "sdxl")
            #expect(object["derivative"] == nil && object["base_note"] == nil, "\(path)")
        }
    }

    @Test func unknownBaseIsNullWithAReason() throws {
        let object = try Self.inspect(Self.bases("llama-peft"))
        #expect(object["kind"] as? String == "lora")
        #expect(object["base"] is NSNull)
        let note = try #require(object["base_note"] as? String)
        #expect(note.contains("no module is a layer of"))
        #expect(try CLI.run(["inspect", Self.bases("llama-peft")]).stdout.contains("base: unknown, "))
    }

    // MARK: what needs SDXL refuses another base, naming it (exit 2: the request makes no sense for this input)

    @Test func convertToTheOfficialLayoutRefuses() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("official").path
        let result = try CLI.run(["convert", Self.bases("sd1-kohya"), "--to", "tlora-official", "--min-rank", "2", "-o", out])
        #expect(result.status == 2)
        #expect(result.stderr.contains("a LoRA for SD 1.x (cross-attention width 768), not SDXL"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func mergeIntoAnSDXLCheckpointRefuses() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("baked.safetensors").path
        let result = try CLI.run(["merge", Self.bases("flux-peft"), "--into", CLI.fixture("models/tiny-sdxl.safetensors"), "-o", out])
        #expect(result.status == 2)
        #expect(result.stderr.contains("a LoRA for FLUX.1"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func sampleRefuses() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("image.png").path
        let result = try CLI.run(["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--prompt", "a dog", "--steps", "1",
                                  "--width", "64", "--height", "64", "--adapter", Self.bases("sd2-peft"), "-o", out])
        #expect(result.status == 2)
        #expect(result.stderr.contains("a LoRA for SD 2.x"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func mergeOfDifferentBasesRefuses() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("both.safetensors").path
        let result = try CLI.run(["merge", Self.bases("sd1-kohya"), Self.bases("sdxl-base"), "-o", out])
        #expect(result.status == 1)
        #expect(result.stderr.contains("adapters of different base models cannot be merged"), "\(result.stderr)")
    }

    // MARK: layout-agnostic commands on other bases

    @Test func sd1ConvertDiffResizeMerge() throws {
        let folder = CLI.temporaryFolder()
        let kohya = folder.appendingPathComponent("sd1.kohya.safetensors").path
        let converted = try CLI.run(["convert", Self.bases("sd1-peft"), "--to", "kohya", "-o", kohya])
        #expect(converted.status == 0, "\(converted.stderr)")
        let object = try Self.inspect(kohya)
        #expect(object["base"] as? String == "sd1")
        let metadata = object["metadata"] as? [String: String] ?? [:]
        #expect(metadata["ss_base_model_version"] == "sd_v1")
        #expect(metadata["modelspec.architecture"] == "stable-diffusion-v1/lora")
        // The same ΔW as the kohya file written from the same PEFT file by diffusers' converter.
        let diff = try CLI.run(["diff", kohya, Self.bases("sd1-kohya"), "--tolerance", "1e-3"])
        #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)")

        let resized = folder.appendingPathComponent("sd1.r2.safetensors").path
        let resize = try CLI.run(["resize", Self.bases("sd1-kohya"), "--rank", "2", "-o", resized])
        #expect(resize.status == 0, "\(resize.stderr)")
        #expect(try Self.inspect(resized)["base"] as? String == "sd1")

        let merged = folder.appendingPathComponent("sd1.merged.safetensors").path
        let merge = try CLI.run(["merge", Self.bases("sd1-kohya"), "\(resized):0.5", "-o", merged])
        #expect(merge.status == 0, "\(merge.stderr)")
        #expect(try Self.inspect(merged)["base"] as? String == "sd1")
    }

    @Test func sd2KohyaToPeftKeepsTheBase() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("sd2.peft.safetensors").path
        let result = try CLI.run(["convert", Self.bases("sd2-kohya"), "--to", "peft", "-o", out])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try Self.inspect(out)
        #expect(object["base"] as? String == "sd2")
        #expect(try CLI.run(["diff", out, Self.bases("sd2-peft"), "--tolerance", "1e-3"]).status == 0)
    }

    /// kohya's fused FLUX.1 projections and PEFT's separate ones convert into each other exactly
    /// (docs/bases.md, "Fused projections"); `diff` and `merge` pair them module by module.
    @Test func fluxFusedProjectionsConvertBothWays() throws {
        let folder = CLI.temporaryFolder()
        let kohya = folder.appendingPathComponent("a.safetensors").path
        let toKohya = try CLI.run(["convert", Self.bases("flux-peft"), "--to", "kohya", "-o", kohya])
        #expect(toKohya.status == 0, "\(toKohya.stderr)")
        #expect(try Self.inspect(kohya)["base"] as? String == "flux1")
        let same = try CLI.run(["diff", kohya, Self.bases("flux-kohya"), "--tolerance", "1e-3"])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
        let peft = folder.appendingPathComponent("b.safetensors").path
        let toPeft = try CLI.run(["convert", Self.bases("flux-kohya"), "--to", "peft", "-o", peft])
        #expect(toPeft.status == 0, "\(toPeft.stderr)")
        let back = try CLI.run(["diff", peft, Self.bases("flux-peft"), "--tolerance", "1e-3"])
        #expect(back.status == 0, "\(back.stdout)\(back.stderr)")
        // A fused and a separate file of one LoRA: the same modules, no difference.
        let mixed = try CLI.run(["diff", Self.bases("flux-kohya"), Self.bases("flux-peft"), "--tolerance", "1e-3"])
        #expect(mixed.status == 0, "\(mixed.stdout)\(mixed.stderr)")
        let merged = folder.appendingPathComponent("m.safetensors").path
        let merge = try CLI.run(["merge", Self.bases("flux-kohya"), "\(Self.bases("flux-peft")):0.5", "-o", merged])
        #expect(merge.status == 0, "\(merge.stderr)")
        #expect(try Self.inspect(merged)["base"] as? String == "flux1")
        // inspect names each fused module and the diffusers layers it stands for.
        let fused = try #require(try Self.inspect(Self.bases("flux-kohya"))["fused_projections"] as? [[String: Any]])
        #expect(fused.count == 3)
        let linear1 = try #require(fused.first { $0["module"] as? String == "lora_unet_single_blocks_0_linear1" })
        #expect(linear1["canonical"] as? String == "transformer.single_transformer_blocks.0.linear1")
        #expect((linear1["parts"] as? [String])?.last == "transformer.single_transformer_blocks.0.proj_mlp")
        #expect(try Self.inspect(Self.bases("flux-peft"))["fused_projections"] == nil)
    }
}
