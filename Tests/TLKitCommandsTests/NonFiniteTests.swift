import Foundation
import Testing

/// Hostile values, built in the tests: copies of the fixtures with NaN, infinity or huge values
/// written into one tensor.
enum Poison {
    static let kohya = CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")
    static let model = CLI.fixture("models/tiny-sdxl.safetensors")
    /// A UNet module of the kohya fixture, as the file names it and as `diff` reports it.
    static let module = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_k"
    static let canonical = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k"

    /// A copy of `source` in `folder` whose tensor `tensor` has element `index` replaced by `value`
    /// (encoded in the tensor's own dtype, F32 or F16).
    static func file(_ source: String, tensor: String, value: Float, index: Int = 0, in folder: URL, name: String) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let length = bytes.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        let info = try #require(header[tensor] as? [String: Any], "no tensor \(tensor) in \(source)")
        let begin = 8 + length + ((info["data_offsets"] as! [Int])[0])
        switch info["dtype"] as! String {
        case "F32":
            withUnsafeBytes(of: value.bitPattern.littleEndian) { for k in 0..<4 { bytes[begin + 4 * index + k] = $0[k] } }
        case "F16":
            withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { for k in 0..<2 { bytes[begin + 2 * index + k] = $0[k] } }
        default:
            Issue.record("unexpected dtype of \(tensor)")
        }
        let path = folder.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func adapter(_ value: Float, in folder: URL, name: String = "bad.safetensors") throws -> String {
        try file(kohya, tensor: module + ".lora_up.weight", value: value, index: 5, in: folder, name: name)
    }

    static func files(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }
}

/// NaN, infinity and overflow get one answer in every command: refused by name, never computed with or
/// written silently, never a crash.
@Suite struct NonFiniteTests {
    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func diffNeverCallsNonFiniteEqual(_ value: Float) throws {
        let folder = CLI.temporaryFolder()
        let bad = try Poison.adapter(value, in: folder)
        let result = try CLI.run(["diff", bad, Poison.kohya, "--json"])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let summary = CLI.json(result.stdout)["summary"] as? [String: Any] ?? [:]
        #expect(summary["equal"] as? Bool == false)
        #expect(summary["nonfinite_modules"] as? [String] == [Poison.canonical], "\(result.stdout)")
        #expect(result.stderr.contains(bad) && result.stderr.contains(Poison.module), "\(result.stderr)")
        // Against itself too: NaN is not equal to NaN.
        let same = try CLI.run(["diff", bad, bad])
        #expect(same.status == 1, "\(same.stdout)")
        #expect(same.stdout.hasPrefix("different"), "\(same.stdout)")
    }

    @Test(arguments: ["inf", "-inf", "nan", "1e308", "-4e38"])
    func weightsOnTheCommandLineMustBeFinite(_ weight: String) throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("m.safetensors").path
        for arguments in [[Poison.kohya + ":" + weight], [Poison.kohya + ":" + weight, Poison.kohya + ":" + weight]] {
            let result = try CLI.run(["merge"] + arguments + ["-o", out])
            #expect(result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("finite"), "\(result.stderr)")
        }
        let baked = try CLI.run(["merge", Poison.kohya + ":" + weight, "--into", Poison.model, "-o", out])
        #expect(baked.status == 2, "\(baked.stderr)")
        let sample = try CLI.run(["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--embeddings", SampleTests.inputs,
                                  "--latents", SampleTests.inputs, "--steps", "1", "--adapter", Poison.kohya + ":" + weight,
                                  "--output-latents", out])
        #expect(sample.status == 2, "\(sample.stderr)")
        #expect(Poison.files(folder).isEmpty)
    }

    /// Every command that computes with an adapter refuses one holding NaN or infinity, naming the file
    /// and the module, and writes nothing.
    @Test(arguments: [Float.nan, .infinity])
    func nonFiniteAdaptersAreRefusedByEveryCommand(_ value: Float) throws {
        let folder = CLI.temporaryFolder()
        let bad = try Poison.adapter(value, in: folder)
        let out = folder.appendingPathComponent("out.safetensors").path
        let commands: [[String]] = [
            ["merge", bad, "-o", out],
            ["merge", bad, Poison.kohya, "--method", "svd", "--rank", "2", "-o", out],
            ["merge", bad, "--into", Poison.model, "-o", out],
            ["resize", bad, "--rank", "2", "-o", out],
            ["convert", bad, "--to", "peft", "-o", out],
            ["convert", bad, "--to", "kohya", "--dtype", "f16", "-o", out],
            ["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--embeddings", SampleTests.inputs, "--latents", SampleTests.inputs,
             "--steps", "1", "--adapter", bad, "--output-latents", out],
        ]
        for command in commands {
            let result = try CLI.run(command)
            #expect(result.status == 1, "\(command): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains(bad) && result.stderr.contains(Poison.module), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("--allow-nonfinite"), "\(command): \(result.stderr)")
            #expect(Poison.files(folder) == ["bad.safetensors"], "\(command) left \(Poison.files(folder))")
        }
    }

    @Test func allowNonfiniteLetsThemThroughWithAWarning() throws {
        let folder = CLI.temporaryFolder()
        let bad = try Poison.adapter(.nan, in: folder)
        let out = folder.appendingPathComponent("out.safetensors").path
        let result = try CLI.run(["convert", bad, "--to", "peft", "--allow-nonfinite", "-o", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning") && result.stderr.contains(Poison.module), "\(result.stderr)")
        // No SVD of NaN exists even when allowed: resize and convert --rank say so, naming the file and the module.
        for command in [["resize", bad, "--rank", "2"], ["convert", bad, "--to", "kohya", "--rank", "2"]] {
            let result = try CLI.run(command + ["--allow-nonfinite", "-o", out + "2"])
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains(bad) && result.stderr.contains(Poison.canonical), "\(command): \(result.stderr)")
            #expect(!result.stderr.contains("LAPACK"), "\(command): \(result.stderr)")
        }
    }

    /// Finite inputs whose result is not: a sum past Float32's range, a bake past F16's 65504.
    @Test func resultsThatOverflowAreRefused() throws {
        let folder = CLI.temporaryFolder()
        let huge = try Poison.adapter(3e38, in: folder, name: "huge.safetensors")
        let out = folder.appendingPathComponent("out.safetensors").path
        let summed = try CLI.run(["merge", huge + ":2", "-o", out])
        #expect(summed.status == 1, "\(summed.stderr)")
        #expect(summed.stderr.contains(Poison.canonical), "\(summed.stderr)")
        let baked = try CLI.run(["merge", Poison.kohya + ":1e9", "--into", Poison.model, "-o", out])
        #expect(baked.status == 1, "\(baked.stderr)")
        #expect(baked.stderr.contains("the result has NaN or infinite values in "), "\(baked.stderr)")
        #expect(baked.stderr.contains("65504"), "\(baked.stderr)")
        #expect(Poison.files(folder) == ["huge.safetensors"], "left \(Poison.files(folder))")
    }

    /// Checkpoints: extract refuses NaN weights by file and tensor; sample refuses to write what a NaN
    /// model produced (an all-black image) and fails instead.
    @Test func nonFiniteCheckpointsAreRefused() throws {
        let folder = CLI.temporaryFolder()
        let tensor = "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"
        let bad = try Poison.file(Poison.model, tensor: tensor, value: .nan, index: 3, in: folder, name: "nan-model.safetensors")
        let out = folder.appendingPathComponent("out.safetensors").path
        let extract = try CLI.run(["extract", Poison.model, bad, "--rank", "2", "-o", out])
        #expect(extract.status == 1, "\(extract.stderr)")
        #expect(extract.stderr.contains(bad) && extract.stderr.contains("attn1.to_q"), "\(extract.stderr)")
        let png = folder.appendingPathComponent("img-{i}.png").path
        let sample = try CLI.run(["sample", "--model", bad, "--embeddings", SampleTests.inputs, "--latents", SampleTests.inputs,
                                  "--steps", "2", "-o", png, "--output-latents", out])
        #expect(sample.status == 1, "\(sample.stderr)")
        #expect(sample.stderr.contains("NaN"), "\(sample.stderr)")
        #expect(Poison.files(folder) == ["nan-model.safetensors"], "\(Poison.files(folder))")
    }

    /// A same-format copy computes nothing: its bytes pass unchanged; any conversion is refused.
    @Test func convertRefusesOnlyWhereItComputes() throws {
        let folder = CLI.temporaryFolder()
        let bad = try Poison.adapter(.nan, in: folder)
        let copy = folder.appendingPathComponent("copy.safetensors").path
        #expect(try CLI.run(["convert", bad, "--to", "kohya", "-o", copy]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == Data(contentsOf: URL(fileURLWithPath: bad)))
        let refused = try CLI.run(["convert", bad, "--to", "tlora", "--min-rank", "1", "-o", folder.appendingPathComponent("t.safetensors").path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("NaN or infinite values"), "\(refused.stderr)")
    }
}
