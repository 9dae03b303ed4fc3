import Foundation
import Testing
import TestSupport

/// `inspect` and `convert` on LyCORIS T-LoRA files and the official FLUX.1 lora.pt (docs/families.md).
/// The numbers are checked in AdaptersTests/ForeignTLoRATests; here the command line.
struct ForeignTLoRACommandTests {
    static let lycoris = CLI.fixture("adapters/lycoris-tlora/tlora.safetensors")
    static let flux = CLI.fixture("adapters/flux-tlora/checkpoint-100/lora.pt")
    static let unet = CLI.fixture("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")

    @Test func inspectTellsLycorisTLoRA() throws {
        let result = try CLI.run(["inspect", Self.lycoris, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = CLI.json(result.stdout)
        #expect(report["family"] as? String == "lycoris-tlora" && report["kind"] as? String == "tlora", "\(result.stdout)")
        #expect(report["rank"] as? Double == 4 && report["alpha"] as? Double == 2, "\(result.stdout)")
        #expect((report["schedule_note"] as? String ?? "").contains("stores no schedule"), "\(result.stdout)")
    }

    /// Without --base: refused, naming the option and a module; nothing written.
    @Test func convertRefusesLycorisWithoutTheBase() throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("out.safetensors").path
        for to in ["kohya", "tlora", "peft"] {
            let result = try CLI.run(["convert", Self.lycoris, "--to", to, "-o", out])
            #expect(result.status == 2, "\(to): \(result.stderr)")
            #expect(result.stderr.contains("--base MODEL") && result.stderr.contains("is a LyCORIS T-LoRA module"), "\(to): \(result.stderr)")
        }
        let diff = try CLI.run(["diff", Self.lycoris, Self.lycoris])
        #expect(diff.status != 0 && diff.stderr.contains("--base MODEL"), "\(diff.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "no output")
    }

    @Test func convertLycorisWithTheBaseAndBack() throws {
        let folder = CLI.temporaryFolder()
        let tlora = folder.appendingPathComponent("t.safetensors").path, back = folder.appendingPathComponent("back.safetensors").path
        let kohya = folder.appendingPathComponent("k.safetensors").path
        let first = try CLI.run(["convert", Self.lycoris, "--base", Self.unet, "--min-rank", "2", "--to", "tlora", "-o", tlora])
        #expect(first.status == 0, "\(first.stderr)")
        let folded = try CLI.run(["convert", Self.lycoris, "--base", Self.unet, "--min-rank", "2", "--to", "kohya", "-o", kohya])
        #expect(folded.status == 0, "\(folded.stderr)")
        let second = try CLI.run(["convert", tlora, "--base", Self.unet, "--to", "lycoris-tlora", "-o", back])
        #expect(second.status == 0, "\(second.stderr)")
        let inspected = CLI.json(try CLI.run(["inspect", back, "--json"]).stdout)
        #expect(inspected["family"] as? String == "lycoris-tlora")
        let schedule = inspected["schedule"] as? [String: Any] ?? [:]
        #expect(schedule["max_rank"] as? Int == 4 && schedule["min_rank"] as? Int == 2, "\(inspected)")
        // Without --base, writing LyCORIS is refused too.
        let noBase = try CLI.run(["convert", tlora, "--to", "lycoris-tlora", "-o", back + ".2"])
        #expect(noBase.status == 2 && noBase.stderr.contains("--base MODEL"), "\(noBase.stderr)")
    }

    @Test func inspectReadsTheFluxCheckpoint() throws {
        let result = try CLI.run(["inspect", Self.flux, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = CLI.json(result.stdout)
        #expect(report["base"] as? String == "flux1" && report["format"] as? String == "tlora-official", "\(result.stdout)")
        #expect(report["method"] as? String == "vanilla-tlora", "\(result.stdout)")
        let schedule = report["schedule"] as? [String: Any] ?? [:]
        #expect(schedule["max_rank"] as? Int == 4 && schedule["min_rank"] as? Int == 2, "\(result.stdout)")
        #expect((report["schedule_note"] as? String ?? "").contains("left out"), "\(result.stdout)")
    }

    @Test func convertTheFluxCheckpoint() throws {
        let folder = CLI.temporaryFolder()
        let peft = folder.appendingPathComponent("flux.safetensors").path
        let result = try CLI.run(["convert", Self.flux, "--to", "peft", "-o", peft])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("left out"), "the unused single-block layers are reported: \(result.stderr)")
        let report = CLI.json(try CLI.run(["inspect", peft, "--json"]).stdout)
        #expect(report["base"] as? String == "flux1" && report["method"] as? String == "vanilla-tlora", "\(report)")
        let metadata = report["metadata"] as? [String: Any] ?? [:]
        #expect(metadata["tlora.min_rank"] as? String == "2" && metadata["tlora.max_rank"] as? String == "4", "\(metadata)")
        let kohyaPath = folder.appendingPathComponent("k.safetensors").path
        let kohya = try CLI.run(["convert", Self.flux, "--to", "kohya", "-o", kohyaPath])
        #expect(kohya.status == 0, "\(kohya.stderr)")
        let kohyaReport = CLI.json(try CLI.run(["inspect", kohyaPath, "--json"]).stdout)
        let kohyaMetadata = kohyaReport["metadata"] as? [String: Any] ?? [:]
        #expect(kohyaReport["base"] as? String == "flux1" && kohyaMetadata["tlora.components_per_rank"] as? String == "3", "\(kohyaReport)")
    }
}
