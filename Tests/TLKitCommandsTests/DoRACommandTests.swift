import Foundation
import Testing
import TestSupport

/// DoRA files: `merge --into` bakes them; every command without the base weights refuses them, naming a
/// module (docs/families.md, "DoRA").
struct DoRACommandTests {
    static let peft = CLI.fixture("adapters/dora")
    static let lycoris = CLI.fixture("adapters/lycoris/dora.safetensors")
    static let kohya = CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")

    @Test func commandsWithoutTheBaseRefuseIt() throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("out.safetensors").path
        for (dora, module) in [(Self.peft, "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"),
                               (Self.lycoris, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q")] {
            for arguments in [["convert", dora, "--to", "kohya", "-o", out], ["diff", dora, Self.kohya], ["diff", Self.kohya, dora],
                              ["resize", dora, "--rank", "2", "-o", out], ["merge", dora, Self.kohya, "-o", out],
                              ["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--prompt", "x", "--steps", "1", "--adapter", dora,
                               "--output-latents", out]] {
                let result = try CLI.run(arguments)
                #expect(result.status == (arguments[0] == "diff" ? 2 : 1), "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains("module \(module) is a DoRA module") && result.stderr.contains("merge --into"),
                        "\(arguments): \(result.stderr)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "no output")
    }

    @Test func mergeIntoBakesIt() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("baked.safetensors").path
        let result = try CLI.run(["merge", Self.kohya, Self.peft + ":0.8", "--into", CLI.fixture("models/tiny-sdxl.safetensors"), "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"applied\":199"), "\(result.stdout)")
        #expect(FileManager.default.fileExists(atPath: out))
    }

    @Test func convertWithTheBaseAndARank() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("lora.safetensors").path
        let unet = CLI.fixture("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")
        let result = try CLI.run(["convert", Self.peft, "--base", unet, "--rank", "4", "--to", "kohya", "-o", out, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = CLI.json(result.stdout)
        let modules = report["modules"] as? [[String: Any]] ?? []
        #expect(modules.count == 3 && modules.allSatisfy { ($0["relative_error"] as? Double ?? 0) > 0 }, "\(result.stdout)")
        let noRank = try CLI.run(["convert", Self.peft, "--base", unet, "--to", "kohya", "-o", out])
        #expect(noRank.status == 2 && noRank.stderr.contains("--base needs --rank"), "\(noRank.stderr)")
    }

    @Test func inspectNamesWhatAppliesIt() throws {
        let result = try CLI.run(["inspect", Self.peft])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("DoRA (needs the base weights: merge --into applies it, convert --base --rank approximates it)"), "\(result.stdout)")
    }

    /// A DoRA file kept in the catalog acts as the file does: listed as DoRA, rebuilt byte for byte, baked by
    /// reference into the same checkpoint bytes, refused by reference where it is refused as a file.
    @Test func catalogReferencesToDoRAActAsTheFile() throws {
        let folder = CLI.temporaryFolder()
        let catalog = folder.appendingPathComponent("catalog.sqlite").path
        for (name, file) in [("peft-dora", Self.peft + "/pytorch_lora_weights.safetensors"), ("lycoris-dora", Self.lycoris)] {
            let added = try CLI.run(["add", file, "--name", name, "--catalog", catalog])
            #expect(added.status == 0, "\(added.stderr)")
            let copy = folder.appendingPathComponent("\(name).safetensors").path
            #expect(try CLI.run(["get", name, "-o", copy, "--catalog", catalog]).status == 0)
            #expect(FileManager.default.contents(atPath: copy) == FileManager.default.contents(atPath: file), "\(name) rebuilt exactly")
            let refused = try CLI.run(["convert", name, "--to", "kohya", "-o", folder.appendingPathComponent("x.safetensors").path, "--catalog", catalog])
            #expect(refused.status == 1 && refused.stderr.contains("is a DoRA module"), "\(refused.stderr)")
        }
        let listed = try CLI.run(["list", "--catalog", catalog, "--json"]).stdoutLines.map(CLI.json)
        #expect(listed.count == 2 && listed.allSatisfy { $0["family"] as? String == "dora" }, "\(listed)")

        let base = CLI.fixture("models/tiny-sdxl.safetensors")
        let fromFile = folder.appendingPathComponent("from-file.safetensors").path
        let fromRef = folder.appendingPathComponent("from-ref.safetensors").path
        #expect(try CLI.run(["merge", Self.peft + ":0.8", "--into", base, "-o", fromFile]).status == 0)
        let merged = try CLI.run(["merge", "peft-dora:0.8", "--into", base, "-o", fromRef, "--catalog", catalog])
        #expect(merged.status == 0, "\(merged.stderr)")
        // The same tensors; the header differs only where it names the input (modelspec.merged_from).
        #expect(try Self.dataSection(fromRef) == Self.dataSection(fromFile))
    }

    /// The bytes after a safetensors file's header.
    static func dataSection(_ path: String) throws -> Data {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return bytes.dropFirst(8 + headerLength)
    }
}
