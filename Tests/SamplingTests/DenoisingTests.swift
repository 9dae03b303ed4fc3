import Adapters
import Engine
import Foundation
import SafeTensors
import Sampling
import SDXL
import TestSupport
import Testing
import TextEncoders
@testable import UNet

/// Final latents of the full denoising loop against diffusers' StableDiffusionXLPipeline (same initial
/// latents and embeddings, 5 steps, guidance 5, two images), with and without adapters.
@Suite struct DenoisingTests {
    static let adapters: [String: [(String, Float)]] = [
        "base": [],
        "peft": [("adapters/peft/pytorch_lora_weights.safetensors", 1)],
        "official-ortho": [("adapters/official-ortho", 1)],
        "peft0.5+official-ortho": [("adapters/peft/pytorch_lora_weights.safetensors", 0.5), ("adapters/official-ortho", 1)],
        "kohya-ff": [("reference/sampling_kohya_ff.safetensors", 1)],
    ]

    static func encoders() throws -> SDXLTextEncoders {
        try SDXLTextEncoders(model: try SDXLModel.open(Reference.model),
                             tokenizerFolder: Reference.path("models/tiny-sdxl/tokenizer"),
                             tokenizer2Folder: Reference.path("models/tiny-sdxl/tokenizer_2"))
    }

    /// Samples with the adapters applied first; `conditioning` runs after them, so text-encoder modules
    /// merged into `encoders` act on the prompt.
    func run(_ adapterFiles: [(String, Float)], encoders: SDXLTextEncoders? = nil, precision: Precision = .fp32,
             conditioning: () throws -> Conditioning) throws -> (Tensor<Float>, AdapterStack) {
        let model = try SDXLModel.open(Reference.model)
        let unet = try SDXLUNet(model: model)
        let entries = try adapterFiles.map { file, scale in
            AdapterStack.Entry(adapter: try AdapterReader.read(Reference.path(file)), scale: scale, label: file)
        }
        let stack = try AdapterStack(entries, unet: unet, textEncoders: encoders)
        unet.use(precision)
        let conditioning = try conditioning()
        let scheduler = try EulerDiscreteScheduler(config: .sdxl, steps: Reference.steps)
        let sampler = SDXLSampler(unet: unet, scheduler: scheduler, guidance: Reference.guidance)
        let noise = Reference.tensors("reference/sampling_inputs.safetensors")["latents"]!
        var seen: [Float] = []
        let out = try sampler.sample(noise: noise, conditioning: conditioning, height: Reference.height, width: Reference.width,
                                     adapters: stack.hooked) { seen.append($0.timestep) }
        #expect(seen == scheduler.timesteps)
        return (out, stack)
    }

    @Test(arguments: ["base", "peft", "official-ortho", "peft0.5+official-ortho", "kohya-ff"])
    func finalLatentsEqualDiffusers(run name: String) throws {
        let (latents, stack) = try run(Self.adapters[name]!) { try Conditioning(file: Reference.inputs) }
        let reference = Reference.outputs["final/\(name)"]!
        #expect(latents.shape == reference.shape)
        let err = scaleRelative(latents.array, reference.array)
        print("sampling \(name): \(err)")
        #expect(err <= 1e-3)
        for report in stack.reports {
            #expect(report.skipped.isEmpty && report.applied > 0 && report.textEncoderMerged.isEmpty)
            // Without text encoders (embeddings given) only text-encoder modules go unused.
            #expect(report.unusedModules.allSatisfy { $0.hasPrefix("text_encoder") })
            #expect((report.schedule != nil) == report.label.contains("official"))
            #expect(report.scheduleFromMetadata == false)
        }
    }

    /// bf16 against the Float32 path on the same inputs: final latents within 5e-2 of their scale, with a
    /// merged LoRA and a masked T-LoRA hooked per step.
    @Test(.enabled(if: Precision.hardwareHasBF16, "needs native bf16 (AVX-512 BF16 or AMX); skipped on this CPU"),
          arguments: ["base", "peft0.5+official-ortho"])
    func bf16FinalLatentsFollowFloat32(run name: String) throws {
        let (fp32, _) = try run(Self.adapters[name]!) { try Conditioning(file: Reference.inputs) }
        let (bf16, _) = try run(Self.adapters[name]!, precision: .bf16) { try Conditioning(file: Reference.inputs) }
        let err = scaleRelative(bf16.array, fp32.array)
        print("sampling \(name) bf16 vs fp32: \(err)")
        #expect(err <= 5e-2)
    }

    @Test func finalLatentsFromThePromptEqualDiffusers() throws {
        let encoders = try Self.encoders()
        let (latents, _) = try run([], encoders: encoders) {
            let c = try Conditioning(encoders: encoders, prompt: Reference.prompt, negative: nil)
            #expect(c.negativePromptEmbeds.array.allSatisfy { $0 == 0 })
            return c
        }
        let err = scaleRelative(latents.array, Reference.outputs["final/prompt"]!.array)
        print("sampling from the prompt: \(err)")
        #expect(err <= 1e-3)
    }

    /// The PEFT LoRA's text-encoder modules change the prompt embeddings, as after diffusers' load_lora_weights.
    @Test func textEncoderModulesActOnThePrompt() throws {
        let encoders = try Self.encoders()
        let (latents, stack) = try run(Self.adapters["peft"]!, encoders: encoders) {
            try Conditioning(encoders: encoders, prompt: Reference.prompt, negative: nil)
        }
        #expect(stack.reports[0].textEncoderMerged.count == 20 && stack.reports[0].unusedModules.isEmpty)
        let reference = Reference.outputs["final/peft-prompt"]!.array
        let err = scaleRelative(latents.array, reference)
        // Without the text-encoder modules the result is far off: the test can fail.
        let (unetOnly, _) = try run(Self.adapters["peft"]!) {
            try Conditioning(encoders: try Self.encoders(), prompt: Reference.prompt, negative: nil)
        }
        let without = scaleRelative(unetOnly.array, reference)
        print("sampling peft with the prompt: \(err) (UNet modules only: \(without))")
        #expect(err <= 1e-3)
        #expect(without > 1e-2)
    }

    @Test func embeddingsFileWithoutNegativesGivesZeros() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-emb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("e.safetensors").path
        let source = Reference.tensors("reference/sampling_inputs.safetensors")
        let names = ["prompt_embeds", "pooled_prompt_embeds"]
        try SafeTensorsWriter.write(to: file, metadata: [:], tensors: names.map { TensorSpec(name: $0, dtype: .f32, shape: source[$0]!.shape) }) { info in
            source[info.name]!.array.withUnsafeBytes { Array($0) }
        }
        let c = try Conditioning(file: file)
        #expect(c.promptEmbeds.shape == [77, 128] && c.pooled.shape == [64])
        #expect(c.negativePooled.array.allSatisfy { $0 == 0 })
        #expect(throws: SamplingError.self) { try Conditioning(file: Reference.path("reference/sampling_outputs.safetensors")) }
    }
}

@Suite struct AdapterStackTests {
    /// A restorable merge writes new weight tensors; restoring gives back the loaded weights bit for bit.
    @Test func restoreWeightsUndoesTheMerge() throws {
        let unet = try SDXLUNet(model: try SDXLModel.open(Reference.model))
        let loaded = unet.linears.mapValues { $0.weight.array }
        let inputs = Reference.tensors("reference/unet_inputs.safetensors")
        func output() throws -> [Float] {
            try unet.forward(latents: inputs["latents"]!, timestep: 500, context: inputs["encoder_hidden_states"]!,
                             textEmbeds: inputs["text_embeds"]!, timeIds: inputs["time_ids"]!, adapters: []).array
        }
        let before = try output()
        let stack = try AdapterStack([.init(adapter: try AdapterReader.read(Reference.path("reference/sampling_kohya_ff.safetensors")), label: "ff")], unet: unet, restorable: true)
        let merged = stack.reports[0].merged
        #expect(stack.hooked.isEmpty && !merged.isEmpty)
        #expect(merged.contains { $0.hasSuffix("ff.net.0.proj") } && merged.contains { $0.hasSuffix("proj_in") })
        #expect(merged.allSatisfy { unet.linears[$0]!.weight.array != loaded[$0]! })
        let effect = scaleRelative(try output(), before)
        print("merge: effect on the UNet output \(effect)")
        #expect(effect > 1e-3)
        unet.restoreWeights()
        #expect(unet.linears.allSatisfy { $0.value.weight.array == loaded[$0.key]! })
    }
}
