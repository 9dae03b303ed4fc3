import Foundation
import Testing

/// `convert lora.pt`: a torch.save LoRA read by the restricted reader, written as safetensors, equal to
/// the safetensors file it was saved from (Fixtures/fixturegen/torch_pickles.py); a hostile one refused.
struct TorchInputTests {
    @Test func convertsATorchSavedLoRA() throws {
        let folder = CLI.temporaryFolder()
        // Through a symbolic link too: the file is sniffed where the link points.
        let link = folder.appendingPathComponent("lora.pt").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: CLI.fixture("adapters/torch/lora.pt"))
        let out = folder.appendingPathComponent("lora.safetensors").path
        let converted = try CLI.run(["convert", link, "--to", "kohya", "-o", out])
        #expect(converted.status == 0, "\(converted.stderr)")
        let diff = try CLI.run(["diff", out, HostileFiles.kohyaFixture, "--json"])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect((CLI.json(diff.stdout)["summary"] as? [String: Any])?["equal"] as? Bool == true, "\(diff.stdout)")
    }

    @Test func refusesAHostilePickleAndWritesNothing() throws {
        let marker = "/tmp/tlkit-hostile-pickle-ran"
        try? FileManager.default.removeItem(atPath: marker)
        let out = CLI.temporaryFolder().appendingPathComponent("out.safetensors").path
        let result = try CLI.run(["convert", CLI.fixture("adapters/torch/hostile-system.pt"), "--to", "kohya", "-o", out])
        #expect(result.status != 0)
        #expect(result.stderr.contains("system") && result.stderr.contains("refused"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(!FileManager.default.fileExists(atPath: marker))
    }
}
