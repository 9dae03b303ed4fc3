import Engine
import Foundation
import SDXL
import TestSupport
import Testing
import VAE

/// The fixture VAE against diffusers' AutoencoderKL in float32 (Fixtures/reference/vae.safetensors).
@Suite struct VAEReferenceTests {
    static let tolerance = 1e-4

    static func check(_ label: String, _ errors: [(String, Double)]) {
        print("vae [\(label)]: " + errors.map { "\($0.0) \(String(format: "%.2e", $0.1))" }.joined(separator: ", "))
        for (name, error) in errors { #expect(error <= tolerance, "\(label) \(name): \(error)") }
    }

    @Test(arguments: ["folder", "single-file"])
    func encoderMatchesDiffusers(layout: String) throws {
        let vae = try AutoencoderKL(model: SDXLModel.open(Reference.path(Reference.layouts[layout]!)))
        let ref = Reference.tensors
        let posterior = try vae.encode(images: ref["images"]!)
        #expect(posterior.mean.shape == [2, 4, 8, 6])
        let sample = try posterior.sample(noise: ref["noise"]!)
        Self.check("\(layout) encoder", [
            ("mean", scaleRelative(posterior.mean, ref["mean"]!)),
            ("logvar", scaleRelative(posterior.logvar, ref["logvar"]!)),
            ("sample", scaleRelative(sample, ref["sample"]!)),
        ])
    }

    @Test(arguments: ["folder", "single-file"])
    func decoderMatchesDiffusers(layout: String) throws {
        let vae = try AutoencoderKL(model: SDXLModel.open(Reference.path(Reference.layouts[layout]!)))
        let ref = Reference.tensors
        let images = try vae.decode(latents: ref["latents"]!)
        #expect(images.shape == [2, 3, 64, 48])
        Self.check("\(layout) decoder", [("decoded", scaleRelative(images, ref["decoded"]!))])
    }

    /// bf16 wide convolutions: within 2e-2 of diffusers' Float32 decode (the bound the UNet's bf16 output
    /// meets), and not bitwise the Float32 result (the bf16 kernels did run).
    @Test(.enabled(if: Precision.hardwareHasBF16, "needs native bf16 (AVX-512 BF16 or AMX); skipped on this CPU"))
    func bf16DecoderFollowsDiffusers() throws {
        let model = try SDXLModel.open(Reference.path(Reference.layouts["folder"]!))
        let ref = Reference.tensors
        let bf16 = try AutoencoderKL(model: model, precision: .bf16).decode(latents: ref["latents"]!)
        let fp32 = try AutoencoderKL(model: model).decode(latents: ref["latents"]!)
        let err = scaleRelative(bf16, ref["decoded"]!)
        print("VAE bf16 decoder vs diffusers: \(err)")
        #expect(err <= 2e-2)
        #expect(bf16.array != fp32.array)
    }

    /// `--vae PATH`: a vae folder, a pipeline folder, a full single-file checkpoint, the bare diffusers file
    /// (no config.json: inferred), an LDM-named VAE file, and a diffusers file with pre-0.14 attention names.
    @Test func standaloneVAEsMatchDiffusers() throws {
        let tmp = try Reference.TemporaryFolder()
        let ldm = tmp.file("ldm-vae.safetensors")
        try Reference.copyTensors(from: Reference.path("models/tiny-sdxl.safetensors"), to: ldm) { name in
            name.hasPrefix("first_stage_model.") ? String(name.dropFirst("first_stage_model.".count)) : nil
        }
        let legacy = tmp.file("legacy-attention.safetensors")
        let renames = [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")]
        try Reference.copyTensors(from: Reference.path("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors"), to: legacy) { name in
            renames.reduce(name) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
        }
        let ref = Reference.tensors
        for path in [Reference.path("models/tiny-sdxl/vae"), Reference.path("models/tiny-sdxl"),
                     Reference.path("models/tiny-sdxl.safetensors"),
                     Reference.path("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors"), ldm, legacy] {
            let vae = try AutoencoderKL(path: path)
            #expect(vae.config == AutoencoderKLConfig(blockOutChannels: [32, 64, 64, 64]), "\(path)")
            let mean = try vae.encode(images: ref["images"]!).mean
            let images = try vae.decode(latents: ref["latents"]!)
            Self.check((path as NSString).lastPathComponent, [
                ("mean", scaleRelative(mean, ref["mean"]!)),
                ("decoded", scaleRelative(images, ref["decoded"]!)),
            ])
        }
    }
}

@Suite struct VAEConfigTests {
    /// The single file has no config.json: shapes and SDXL constants must give what the folder's config says.
    @Test func singleFileInfersTheFolderConfig() throws {
        let folder = try SDXLModel.open(Reference.path(Reference.layouts["folder"]!))
        let single = try SDXLModel.open(Reference.path(Reference.layouts["single-file"]!))
        #expect(folder.configs[.vae] != nil && single.configs[.vae] == nil)
        let a = try AutoencoderKLConfig.infer(VAEWeightSource(model: folder))
        let b = try AutoencoderKLConfig.infer(VAEWeightSource(model: single))
        #expect(a == b)
        #expect(a.blockOutChannels == [32, 64, 64, 64] && a.layersPerBlock == 2 && a.latentChannels == 4)
        #expect(a.groups == 32 && a.eps == 1e-6 && a.scalingFactor == 0.13025 && a.downscaleFactor == 8)
        #expect(a.useQuantConv && a.usePostQuantConv && a.midBlockAttention)
    }

    @Test func configDisagreeingWithTheWeightsIsReported() throws {
        let tmp = try Reference.TemporaryFolder()
        let weights = Reference.path("models/tiny-sdxl/vae/diffusion_pytorch_model.safetensors")
        try FileManager.default.copyItem(atPath: weights, toPath: tmp.file("diffusion_pytorch_model.safetensors"))
        let config = #"{"block_out_channels": [32, 64, 64, 128], "norm_num_groups": 32}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: tmp.file("config.json")))
        let error = #expect(throws: VAEError.self) { try AutoencoderKL(path: tmp.path) }
        print("vae: \(error.map { "\($0)" } ?? "no error")")
        guard case .badConfig(_, let reason)? = error else { Issue.record("expected badConfig, got \(String(describing: error))"); return }
        #expect(reason.contains("block_out_channels"))
    }
}

@Suite struct VAEPosteriorTests {
    /// sample = mean + exp(logvar / 2) · noise, and logvar is clamped to [−30, 20] as diffusers does.
    @Test func sampleIsMeanPlusStdTimesNoise() throws {
        // moments [1, 2·2, 1, 3]: mean channels then log-variance channels.
        let moments = Tensor<Float>(shape: [1, 4, 1, 3], values: [0.5, -1, 2, 3, 0, -4, 0, 1, -2, 50, -100, 0.25])
        let posterior = try VAEPosterior(moments: moments)
        #expect(posterior.mean.array == [0.5, -1, 2, 3, 0, -4])
        #expect(posterior.logvar.array == [0, 1, -2, 20, -30, 0.25])
        let noise = Tensor<Float>(shape: [1, 2, 1, 3], values: [1, -2, 0.5, 1, 1, -1])
        let sample = try posterior.sample(noise: noise)
        for i in 0..<6 {
            let expected = posterior.mean[i] + exp(posterior.logvar[i] / 2) * noise[i]
            #expect(abs(sample[i] - expected) <= 1e-6 * max(1, abs(expected)), "element \(i)")
            #expect(abs(posterior.std[i] - exp(posterior.logvar[i] / 2)) <= 1e-6 * posterior.std[i])
        }
        #expect(throws: VAEError.self) { try posterior.sample(noise: Tensor<Float>(zeros: [1, 2, 3, 1])) }
        #expect(throws: VAEError.self) { try VAEPosterior(moments: Tensor<Float>(zeros: [1, 3, 2, 2])) }
    }

    @Test func fixtureSampleFollowsTheFormula() throws {
        let ref = Reference.tensors
        let vae = try AutoencoderKL(model: SDXLModel.open(Reference.path(Reference.layouts["folder"]!)))
        let posterior = try vae.encode(images: ref["images"]!)
        let sample = try posterior.sample(noise: ref["noise"]!)
        let formula = Tensor<Float>(shape: sample.shape) {
            posterior.mean[$0] + exp(0.5 * posterior.logvar[$0]) * ref["noise"]![$0]
        }
        let error = scaleRelative(sample, formula)
        print("vae sample vs mean + std·noise: \(error)")
        #expect(error <= 1e-6)
    }
}

@Suite struct VAEInputTests {
    static let vae = try! AutoencoderKL(model: SDXLModel.open(Reference.path(Reference.layouts["folder"]!)))

    @Test func badImagesAreRejected() throws {
        for shape in [[1, 4, 64, 64], [1, 3, 60, 64], [1, 3, 64, 44], [3, 64, 64], [0, 3, 64, 64]] {
            let error = #expect(throws: VAEError.self, "\(shape)") { try Self.vae.encode(images: Tensor<Float>(zeros: shape)) }
            print("vae: \(error.map { "\($0)" } ?? "no error")")
            guard case .badInput? = error else { Issue.record("\(shape): expected badInput"); continue }
        }
    }

    @Test func badLatentsAreRejected() throws {
        for shape in [[1, 3, 8, 8], [4, 8, 8], [1, 4, 0, 8]] {
            #expect(throws: VAEError.self, "\(shape)") { try Self.vae.decode(latents: Tensor<Float>(zeros: shape)) }
        }
    }

    @Test func badFilesAreReported() throws {
        #expect(throws: VAEError.self) { try AutoencoderKL(path: Reference.path("models/does-not-exist")) }
        let unet = Reference.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")
        let notVAE = #expect(throws: VAEError.self) { try AutoencoderKL(path: unet) }
        print("vae: \(notVAE.map { "\($0)" } ?? "no error")")
        guard case .notAVAE(let path, _)? = notVAE else { Issue.record("expected notAVAE"); return }
        #expect(path == unet)
        let folder = #expect(throws: VAEError.self) { try AutoencoderKL(path: Reference.path("models/tiny-sdxl/tokenizer")) }
        guard case .notAVAE? = folder else { Issue.record("expected notAVAE for a folder without weights"); return }
        // A checkpoint without a VAE names what is missing.
        let model = try SDXLModel.open(unet)
        let missing = #expect(throws: VAEError.self) { try AutoencoderKL(model: model) }
        print("vae: \(missing.map { "\($0)" } ?? "no error")")
        guard case .missingWeight? = missing else { Issue.record("expected missingWeight"); return }
    }
}
