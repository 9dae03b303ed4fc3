import Foundation
import Testing

/// `train --resume` continues a run with the run's own settings: a flag asking for another value is a
/// usage error naming each one with the stored value; only --steps (and the checkpoint spacing) may change.
@Suite struct ResumeSettingsTests {
    @Test func resumeRefusesSettingsItCannotHonour() throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("run").path
        #expect(try TrainTests.train(out, steps: 2).status == 0)
        let otherImage = folder.appendingPathComponent("other.jpg").path
        try FileManager.default.copyItem(atPath: TrainTests.image, toPath: otherImage)

        let refused = try CLI.run(["train", "--model", TrainTests.model, "-o", out, "--resume", "--steps", "4",
                                   "--rank", "8", "--min-rank", "1", "--resolution", "128", "--seed", "5", "--lr", "0.001",
                                   "--method", "lora", "--image", otherImage])
        #expect(refused.status == 2)
        for conflict in ["--rank 8 (the run has 4)", "--min-rank 1 (the run has 2)", "--resolution 128 (the run has 64)",
                         "--seed 5 (the run has 0)", "--lr 0.001 (the run has 0.0001)", "--method lora (the run has tlora)",
                         "--image \(otherImage) (the run has \(TrainTests.image))"] {
            #expect(refused.stderr.contains(conflict), "missing \(conflict): \(refused.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(out)/checkpoint-4"), "nothing is trained after a refusal")

        // The run's own values, given again, and a larger --steps are accepted.
        let resumed = try CLI.run(["train", "--model", TrainTests.model, "-o", out, "--resume", "--steps", "3",
                                   "--rank", "4", "--min-rank", "2", "--resolution", "64", "--image", TrainTests.image])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(out)/adapter.safetensors"))
    }

    @Test func aRunThatFailsBeforeItsFirstStepLeavesNoFolder() throws {
        let folder = CLI.temporaryFolder()
        for model in ["/nonexistent/sdxl.safetensors", CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors")] {
            let out = folder.appendingPathComponent("run").path
            let result = try CLI.run(["train", "--model", model, "--image", TrainTests.image, "--class", "mug", "-o", out,
                                      "--rank", "4", "--min-rank", "2", "--steps", "1", "--resolution", "64"])
            #expect(result.status == 1, "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(model) left \(out) behind")
        }
    }
}
