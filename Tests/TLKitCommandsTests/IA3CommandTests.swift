import Foundation
import Testing
import TestSupport

/// (IA)³ files: `inspect` names the family and each module's axis, `merge --into` bakes them, `convert --base
/// --rank` approximates them, and every other command refuses them naming a module (docs/families.md, "(IA)³").
struct IA3CommandTests {
    static let lycoris = CLI.fixture("adapters/ia3/lycoris.safetensors")
    static let peft = CLI.fixture("adapters/peft-ia3")
    static let kohya = CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")
    static let unet = CLI.fixture("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")

    @Test func commandsWithoutTheBaseRefuseIt() throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("out.safetensors").path
        for (ia3, module) in [(Self.peft, "base_model.model.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"),
                              (Self.lycoris, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q")] {
            for arguments in [["convert", ia3, "--to", "kohya", "-o", out], ["diff", ia3, Self.kohya], ["diff", Self.kohya, ia3],
                              ["resize", ia3, "--rank", "2", "-o", out], ["merge", ia3, Self.kohya, "-o", out],
                              ["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--prompt", "x", "--steps", "1", "--adapter", ia3,
                               "--output-latents", out]] {
                let result = try CLI.run(arguments)
                #expect(result.status == (arguments[0] == "diff" ? 2 : 1), "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains("module \(module) is an (IA)³ module") && result.stderr.contains("merge --into")
                        && result.stderr.contains("convert --base"), "\(arguments): \(result.stderr)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "no output")
    }

    @Test(arguments: [lycoris, peft])
    func inspectReportsTheFamilyAndAxes(_ path: String) throws {
        let text = try CLI.run(["inspect", path])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("family: ia3") && text.stdout.contains("ia3: 2 module(s) scale output rows, 2 input channels")
                && text.stdout.contains("base sdxl")
                && text.stdout.contains("unsupported: (IA)³ (needs the base weights: merge --into applies it, convert --base --rank approximates it)"),
                "\(text.stdout)")
        let json = try CLI.run(["inspect", path, "--json"])
        let object = CLI.json(json.stdout)
        #expect(object["family"] as? String == "ia3" && object["unsupported"] as? String == "IA3" && object["base"] as? String == "sdxl", "\(json.stdout)")
        #expect(object["ia3_axes"] as? [String: Int] == ["output": 2, "input": 2], "\(json.stdout)")
    }

    @Test(arguments: [lycoris, peft])
    func mergeIntoBakesIt(_ path: String) throws {
        let out = CLI.temporaryFolder().appendingPathComponent("baked.safetensors").path
        let result = try CLI.run(["merge", Self.kohya, path + ":0.8", "--into", CLI.fixture("models/tiny-sdxl.safetensors"), "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(CLI.json(result.stdout)["applied"] as? Int == 196 + 4, "\(result.stdout)")
    }

    /// ΔW = W ⊙ (s − 1) has the rank of W: a low rank leaves an error, the layer's full rank none.
    @Test(arguments: [lycoris, peft])
    func convertWithTheBaseAndARank(_ path: String) throws {
        let out = CLI.temporaryFolder().appendingPathComponent("lora.safetensors").path
        let low = try CLI.run(["convert", path, "--base", Self.unet, "--rank", "4", "--to", "kohya", "-o", out, "--json"])
        #expect(low.status == 0, "\(low.stderr)")
        let lowErrors = (CLI.json(low.stdout)["modules"] as? [[String: Any]] ?? []).compactMap { $0["relative_error"] as? Double }
        #expect(lowErrors.count == 4 && lowErrors.allSatisfy { $0 > 0.01 }, "\(low.stdout)")
        // 128 ≥ min(out, in) of every adapted layer (64×64, 128×512, 64×288, 64×32).
        let full = try CLI.run(["convert", path, "--base", Self.unet, "--rank", "128", "--to", "kohya", "-o", out, "--json"])
        #expect(full.status == 0, "\(full.stderr)")
        let fullErrors = (CLI.json(full.stdout)["modules"] as? [[String: Any]] ?? []).compactMap { $0["relative_error"] as? Double }
        #expect(fullErrors.count == 4 && fullErrors.allSatisfy { $0 < 1e-5 }, "\(full.stdout)")
        let noRank = try CLI.run(["convert", path, "--base", Self.unet, "--to", "kohya", "-o", out])
        #expect(noRank.status == 2 && noRank.stderr.contains("--base needs --rank"), "\(noRank.stderr)")
    }
}
