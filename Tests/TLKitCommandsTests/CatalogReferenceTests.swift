import Foundation
import Testing

/// Every command that takes an adapter accepts catalog references: NAME, NAME@VERSION, catalog:NAME.
struct CatalogReferenceTests {
    @Test func referencesResolveInConvertDiffMergeAndInspect() throws {
        let folder = CLI.temporaryFolder()
        let catalog = folder.appendingPathComponent("catalog.sqlite").path
        let peft = CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors")
        let kohya = CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")
        let added = try CLI.run(["add", "--catalog", catalog, "--name", "dog", peft])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "dog@1")
        #expect(try CLI.run(["add", "--catalog", catalog, "--name", "dog", kohya]).stdout.contains("dog@2"))

        // Facts come from the same identification as inspect.
        let listed = try CLI.run(["list", "--catalog", catalog, "--json"]).stdoutLines.map(CLI.json)
        #expect(listed.map { $0["format"] as? String } == ["peft", "kohya"])
        #expect(listed.allSatisfy { $0["base"] as? String == "sdxl" && $0["kind"] as? String == "lora" })

        let same = try CLI.run(["diff", "--catalog", catalog, "dog@1", peft])
        #expect(same.status == 0, "dog@1 is the PEFT file: \(same.stderr)")
        let differ = try CLI.run(["diff", "--catalog", catalog, "catalog:dog", "dog@1"])
        #expect(differ.status == 1, "dog (latest) is the kohya file: \(differ.stderr)")

        let out = folder.appendingPathComponent("o.safetensors").path
        let converted = try CLI.run(["convert", "--catalog", catalog, "dog@1", "--to", "kohya", "-o", out])
        #expect(converted.status == 0, "\(converted.stderr)")
        let merged = try CLI.run(["merge", "--catalog", catalog, "dog@1:1", "dog@1:-1", "-o", folder.appendingPathComponent("m.safetensors").path])
        #expect(merged.status == 0, "\(merged.stderr)")
        let inspected = CLI.json(try CLI.run(["inspect", "--catalog", catalog, "--json", "dog@2"]).stdout)
        #expect(inspected["format"] as? String == "kohya")

        let missing = try CLI.run(["convert", "--catalog", catalog, "cat@1", "--to", "kohya", "-o", out])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("cat"), "\(missing.stderr)")
    }
}
