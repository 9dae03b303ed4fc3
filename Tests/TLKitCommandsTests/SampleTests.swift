import Foundation
import Imaging
import SafeTensors
import TestSupport
import Testing

/// `tlkit sample` end to end on the fixture model, against diffusers' final latents (group `sampling`),
/// at --precision fp32: the references are Float32, and auto picks bf16 on processors with AVX-512 BF16.
struct SampleTests {
    static let inputs = CLI.fixture("reference/sampling_inputs.safetensors")

    static func floats(_ path: String, _ name: String) throws -> [Float] {
        try SafeTensorsFile.open(path).floats(name)
    }

    func sample(_ extra: [String]) throws -> (CLI.Result, [Float]) {
        let out = CLI.temporaryFolder().appendingPathComponent("final.safetensors").path
        let result = try CLI.run(["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--embeddings", Self.inputs,
                                  "--latents", Self.inputs, "--steps", "5", "--guidance", "5", "--output-latents", out,
                                  "--json", "--threads", "2", "--precision", "fp32"] + extra)
        return (result, result.status == 0 ? try Self.floats(out, "latents") : [])
    }

    @Test func outputLatentsEqualDiffusers() throws {
        let (result, latents) = try sample([])
        #expect(result.status == 0, "\(result.stderr)")
        let events = result.stdoutLines.map(CLI.json)
        #expect(events.filter { $0["event"] as? String == "step" }.map { $0["timestep"] as? Double } == [801, 601, 401, 201, 1])
        #expect(events.last?["event"] as? String == "done")
        let err = scaleRelative(latents, try Self.floats(CLI.fixture("reference/sampling_outputs.safetensors"), "final/base"))
        print("tlkit sample base: \(err)")
        #expect(err <= 1e-3)
    }

    @Test func severalAdaptersWithScales() throws {
        let (result, latents) = try sample(["--adapter", CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors") + ":0.5",
                                            "--adapter", CLI.fixture("adapters/official-ortho")])
        #expect(result.status == 0, "\(result.stderr)")
        let adapters = result.stdoutLines.map(CLI.json).filter { $0["event"] as? String == "adapter" }
        #expect(adapters.map { $0["masked"] as? Bool } == [false, true])
        #expect(adapters.first?["scale"] as? Double == 0.5)
        let err = scaleRelative(latents, try Self.floats(CLI.fixture("reference/sampling_outputs.safetensors"), "final/peft0.5+official-ortho"))
        print("tlkit sample peft:0.5 + official-ortho: \(err)")
        #expect(err <= 1e-3)
    }

    /// A T-LoRA converted to kohya keeps its schedule in tlora.* metadata and is masked per step.
    @Test func foldedScheduleIsMaskedLikeTheTLoRA() throws {
        let kohya = CLI.temporaryFolder().appendingPathComponent("folded.safetensors").path
        #expect(try CLI.run(["convert", CLI.fixture("adapters/official-ortho"), "--to", "kohya", "-o", kohya]).status == 0)
        let (result, latents) = try sample(["--adapter", kohya])
        #expect(result.status == 0, "\(result.stderr)")
        let adapter = result.stdoutLines.map(CLI.json).first { $0["event"] as? String == "adapter" }
        #expect(adapter?["schedule_from_metadata"] as? Bool == true)
        let err = scaleRelative(latents, try Self.floats(CLI.fixture("reference/sampling_outputs.safetensors"), "final/official-ortho"))
        print("tlkit sample folded kohya T-LoRA: \(err)")
        #expect(err <= 1e-3)
    }

    @Test func promptWithAnAdapterOnTheTextEncoders() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("final.safetensors").path
        let result = try CLI.run(["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--prompt", "a photo of sks dog riding a bike",
                                  "--latents", Self.inputs, "--steps", "5", "--output-latents", out, "--json", "--precision", "fp32",
                                  "--adapter", CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors")])
        #expect(result.status == 0, "\(result.stderr)")
        let adapter = result.stdoutLines.map(CLI.json).first { $0["event"] as? String == "adapter" }
        #expect(adapter?["text_encoder_merged"] as? Int == 20)
        let err = scaleRelative(try Self.floats(out, "latents"),
                                     try Self.floats(CLI.fixture("reference/sampling_outputs.safetensors"), "final/peft-prompt"))
        print("tlkit sample --prompt with peft: \(err)")
        #expect(err <= 1e-3)
    }

    /// -o decodes with the model's VAE: the first image equals diffusers' decode within 1/255 after rounding.
    @Test func pngsEqualDiffusersDecode() throws {
        let folder = CLI.temporaryFolder()
        let pattern = folder.appendingPathComponent("img-{i}.png").path
        let (result, _) = try sample(["-o", pattern])
        #expect(result.status == 0, "\(result.stderr)")
        let file = try SafeTensorsFile.open(CLI.fixture("reference/sampling_outputs.safetensors"))
        let expected = RGBImage(tensorCHW: try file.floats("decoded/base0"), width: 64, height: 64)!
        let read = try ImageFile.decode(path: folder.appendingPathComponent("img-0.png").path)
        let worst = zip(read.image.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        print("tlkit sample -o: largest pixel difference \(worst)/255")
        #expect(read.image.width == 64 && worst <= 1)
        #expect(read.text("parameters")?.hasPrefix("\nSteps: 5, Sampler: Euler") == true, "\(read.text("parameters") ?? "none")")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("img-1.png").path))
    }

    @Test func usageAndInputErrors() throws {
        let model = CLI.fixture("models/tiny-sdxl")
        let out = CLI.temporaryFolder().appendingPathComponent("x.safetensors").path
        let noPrompt = try CLI.run(["sample", "--model", model, "--output-latents", out])
        #expect(noPrompt.status == 2)
        let both = try CLI.run(["sample", "--model", model, "--embeddings", Self.inputs, "--latents", Self.inputs, "--seed", "1", "--output-latents", out])
        #expect(both.status == 2)
        let noPattern = try CLI.run(["sample", "--model", model, "--prompt", "a dog", "--num", "2", "-o", "x.png"])
        #expect(noPattern.status == 2)
        let badLatents = try CLI.run(["sample", "--model", model, "--embeddings", Self.inputs,
                                      "--latents", CLI.fixture("reference/sampling_outputs.safetensors"), "--output-latents", out])
        #expect(badLatents.status == 1 && badLatents.stderr.contains("no tensor 'latents'"), "\(badLatents.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
