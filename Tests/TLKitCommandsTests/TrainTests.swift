import Foundation
import SafeTensors
import Testing

/// `tlkit train` end to end on the fixture model and the shipped demo image, at 64 px (8×8 latents).
@Suite struct TrainTests {
    static let model = CLI.fixture("models/tiny-sdxl")
    static let image = CLI.fixture("images/demo.jpg")

    static func train(_ output: String, steps: Int, extra: [String] = []) throws -> CLI.Result {
        try CLI.run(["train", "--model", model, "--image", image, "--class", "mug", "--output", output,
                     "--rank", "4", "--min-rank", "2", "--steps", "\(steps)", "--checkpoint-every", "2",
                     "--resolution", "64", "--json"] + extra)
    }

    @Test func writesCheckpointsRecordAndFinalAdapter() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("run").path
        let r = try Self.train(out, steps: 4)
        #expect(r.status == 0, "\(r.stderr)")
        let events = r.stdoutLines.map(CLI.json)
        #expect(events.filter { $0["event"] as? String == "step" }.count == 4)
        #expect(events.filter { $0["event"] as? String == "checkpoint" }.map { $0["step"] as? Int } == [2, 4])
        let fm = FileManager.default
        for n in [2, 4] { #expect(fm.fileExists(atPath: "\(out)/checkpoint-\(n)/adapter.safetensors")) }
        #expect(!fm.fileExists(atPath: "\(out)/checkpoint-2/optimizer.safetensors"), "optimizer state only beside the newest")
        #expect(fm.fileExists(atPath: "\(out)/checkpoint-4/optimizer.safetensors"))
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/train.json"))) as! [String: Any]
        #expect((record["losses"] as? [Double])?.count == 4)
        #expect(record["finished"] as? Bool == true)

        let final = try SafeTensorsFile.open("\(out)/adapter.safetensors")
        let m = final.metadata
        #expect(m["tlora.method"] == "tlora" && m["tlora.max_rank"] == "4" && m["tlora.min_rank"] == "2")
        #expect(m["tlora.token"] == "sks" && m["tlora.class"] == "mug" && m["tlora.steps"] == "4")
        #expect(m["tlora.prompt"] == "a photo of sks mug")
        #expect(m["tlora.base_model_sha256"]?.count == 64, "the UNet file's SHA-256")
        // 44 attention projections of the fixture UNet × six factors.
        #expect(final.tensors.count == 176 * 6)
        let inspect = try CLI.run(["inspect", "\(out)/adapter.safetensors", "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("\"tlkit\""), "\(inspect.stdout)")
        // The trained adapter converts to a standard LoRA like any other.
        let kohya = CLI.temporaryFolder().appendingPathComponent("k.safetensors").path
        #expect(try CLI.run(["convert", "\(out)/adapter.safetensors", "--to", "kohya", "-o", kohya]).status == 0)
    }

    /// Stopping after 2 steps and resuming to 4 gives the same bytes as 4 steps in one go.
    @Test func resumedRunIsBitwiseEqualToAnUninterruptedOne() throws {
        let base = CLI.temporaryFolder()
        let straight = base.appendingPathComponent("straight").path, split = base.appendingPathComponent("split").path
        #expect(try Self.train(straight, steps: 4).status == 0)
        #expect(try Self.train(split, steps: 2).status == 0)
        let resumed = try Self.train(split, steps: 4, extra: ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try Data(contentsOf: URL(fileURLWithPath: "\(straight)/adapter.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: "\(split)/adapter.safetensors"))
        #expect(a == b, "final adapters differ")
        let la = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(straight)/train.json"))) as! [String: Any]
        let lb = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(split)/train.json"))) as! [String: Any]
        #expect(la["losses"] as? [Double] == lb["losses"] as? [Double])
    }

    /// Activation recomputation changes memory and time, not the arithmetic: the same bytes.
    @Test func recomputationGivesTheSameAdapter() throws {
        let base = CLI.temporaryFolder()
        let on = base.appendingPathComponent("on").path, off = base.appendingPathComponent("off").path
        let a = try Self.train(on, steps: 2, extra: ["--recompute", "on"])
        #expect(a.status == 0 && a.stderr.contains("recomputation on"), "\(a.stderr)")
        #expect(try Self.train(off, steps: 2, extra: ["--recompute", "off"]).status == 0)
        let bytesOn = try Data(contentsOf: URL(fileURLWithPath: "\(on)/adapter.safetensors"))
        let bytesOff = try Data(contentsOf: URL(fileURLWithPath: "\(off)/adapter.safetensors"))
        #expect(bytesOn == bytesOff)
    }

    @Test func refusesAFolderHoldingAnotherRun() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("run").path
        #expect(try Self.train(out, steps: 2).status == 0)
        let again = try Self.train(out, steps: 2)
        #expect(again.status == 1 && again.stderr.contains("holds another run"), "\(again.stderr)")
    }

    @Test func badInputGivesClearErrors() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("run").path
        let missing = try CLI.run(["train", "--model", Self.model, "--image", "/nonexistent.jpg", "--class", "dog", "--output", out])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent.jpg"), "\(missing.stderr)")
        let ranks = try CLI.run(["train", "--model", Self.model, "--image", Self.image, "--class", "dog", "--output", out,
                                 "--rank", "4", "--min-rank", "8"])
        #expect(ranks.status == 2 && ranks.stderr.contains("--min-rank"), "\(ranks.stderr)")
        let notAModel = try CLI.run(["train", "--model", CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors"),
                                     "--image", Self.image, "--class", "dog", "--output", out])
        #expect(notAModel.status == 1 && notAModel.stderr.contains("SDXL"), "\(notAModel.stderr)")
        let notAnImage = try CLI.run(["train", "--model", Self.model, "--image", CLI.fixture("models/tiny-sdxl/model_index.json"),
                                      "--class", "dog", "--output", CLI.temporaryFolder().appendingPathComponent("r").path, "--resolution", "64"])
        #expect(notAnImage.status == 1 && notAnImage.stderr.contains("model_index.json"), "\(notAnImage.stderr)")
        // Runtime failures, whichever library raised them, take the one error path: "tlkit: …" as the last line
        // (after any progress notes), never ArgumentParser's "Error: …".
        for failure in [missing, notAModel, notAnImage] {
            let last = failure.stderr.split(separator: "\n").last ?? ""
            #expect(last.hasPrefix("tlkit: ") && !failure.stderr.contains("Error: "), "\(failure.stderr)")
        }
    }

    /// Ctrl-C during training: the step in flight is abandoned, a loadable checkpoint is written, exit 130.
    @Test func interruptSavesALoadableCheckpoint() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("run").path
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["train", "--model", Self.model, "--image", Self.image, "--class", "mug", "--output", out,
                             "--rank", "4", "--min-rank", "2", "--steps", "100000", "--checkpoint-every", "100000",
                             "--resolution", "64", "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for the first completed step, then interrupt.
        var buffered = Data()
        while !String(decoding: buffered, as: UTF8.self).contains("\"step\"") {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffered += chunk
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let saved = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("checkpoint-") }
        #expect(saved.count == 1, "\(saved)")
        if let name = saved.first {
            let inspect = try CLI.run(["inspect", "\(out)/\(name)/adapter.safetensors"])
            #expect(inspect.status == 0, "\(inspect.stderr)")
            let resumed = try CLI.run(["train", "--model", Self.model, "--output", out, "--resume",
                                       "--steps", "\(Int(name.dropFirst("checkpoint-".count))! + 1)"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
        }
    }
}
