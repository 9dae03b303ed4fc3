import Foundation
import Testing

struct ConvertTests {
    @Test func officialToKohyaThenInspect() throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("dog.safetensors").path
        let result = try CLI.run(["convert", CLI.fixture("adapters/official-ortho"), "--to", "kohya", "-o", out, "--json", "--title", "dog"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = CLI.json(result.stdout)
        #expect(report["format_in"] as? String == "tlora-official")
        #expect((report["modules"] as? [[String: Any]])?.count == 176)
        let inspect = CLI.json(try CLI.run(["inspect", "--json", out]).stdout)
        #expect(inspect["kind"] as? String == "lora")
        #expect(inspect["format"] as? String == "kohya")
        #expect(inspect["base"] as? String == "sdxl")
        #expect(inspect["rank"] as? Int == 16)
        let metadata = inspect["metadata"] as? [String: String] ?? [:]
        #expect(metadata["ss_base_model_version"] == "sdxl_base_v1-0")
        #expect(metadata["tlora.components_per_rank"] == "2")
        #expect(metadata["modelspec.title"] == "dog")
        #expect(metadata["modelspec.trigger_phrase"] == "sks dog")
        #expect(metadata["sshs_model_hash"]?.count == 64)
        let schedule = inspect["schedule"] as? [String: Any] ?? [:]
        #expect(schedule["min_rank"] as? Int == 4 && schedule["max_rank"] as? Int == 8)
    }

    @Test func stdinToStdout() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")))
        let result = try CLI.run(["convert", "-", "--to", "peft", "-o", "-"], stdin: bytes)
        #expect(result.status == 0, "\(result.stderr)")
        let path = CLI.temporaryFolder().appendingPathComponent("p.safetensors")
        try result.stdoutData.write(to: path)
        let inspect = CLI.json(try CLI.run(["inspect", "--json", path.path]).stdout)
        #expect(inspect["format"] as? String == "peft")
        #expect(inspect["modules"] as? Int == 196)
    }

    @Test func badInputsLeaveNoOutput() throws {
        let folder = CLI.temporaryFolder()
        // Output folder missing.
        let missing = try CLI.run(["convert", CLI.fixture("adapters/peft"), "--to", "kohya", "-o", "/nonexistent-dir/x.safetensors"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")
        // Official checkpoint without hparams and without flags.
        let out = folder.appendingPathComponent("x.safetensors").path
        let noHparams = try CLI.run(["convert", CLI.fixture("adapters/official-ortho-nohparams"), "--to", "kohya", "-o", out])
        #expect(noHparams.status == 1)
        #expect(noHparams.stderr.contains("--min-rank"))
        // Usage errors: --at-timestep on an unscheduled LoRA; --min-rank above --max-rank.
        let unscheduled = try CLI.run(["convert", CLI.fixture("adapters/peft"), "--to", "kohya", "--at-timestep", "500", "-o", out])
        #expect(unscheduled.status == 2, "\(unscheduled.stderr)")
        let ranks = try CLI.run(["convert", CLI.fixture("adapters/peft"), "--to", "tlora", "--min-rank", "8", "--max-rank", "4", "-o", out])
        #expect(ranks.status == 2)
        // A checkpoint is not an adapter.
        let checkpoint = try CLI.run(["convert", CLI.fixture("models/tiny-sdxl.safetensors"), "--to", "kohya", "-o", out])
        #expect(checkpoint.status == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty, "no partial output")
    }

    @Test func sameFormatIsACopyWithANote() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("copy.safetensors").path
        let source = CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")
        let result = try CLI.run(["convert", source, "--to", "kohya", "-o", out])
        #expect(result.status == 0)
        #expect(result.stderr.contains("already kohya"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(contentsOf: URL(fileURLWithPath: source)))
    }

    /// A LyCORIS file has kohya names and a PEFT LoHa/LoKr has PEFT names, but neither holds LoRA factors:
    /// converting to the same format name converts (docs/families.md), it does not copy.
    @Test func familiesConvertEvenToTheirOwnFormatName() throws {
        for (source, format, id) in [("adapters/lycoris/loha-tucker.safetensors", "kohya", "loha"), ("adapters/peft-lokr", "peft", "lokr")] {
            let out = CLI.temporaryFolder().appendingPathComponent("\(id).safetensors").path
            let result = try CLI.run(["convert", CLI.fixture(source), "--to", format, "-o", out])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(!result.stderr.contains("copied unchanged"), "\(result.stderr)")
            let inspect = CLI.json(try CLI.run(["inspect", "--json", out]).stdout)
            #expect(inspect["family"] as? String == "locon", "\(id)")   // a LoRA with convolution modules
            #expect(inspect["format"] as? String == format)
        }
        let peft = CLI.json(try CLI.run(["inspect", "--json", CLI.fixture("adapters/peft-loha")]).stdout)
        #expect(peft["family"] as? String == "loha")
        #expect(peft["unsupported"] == nil)
    }
}

/// diffusers builds a LoraConfig from `lora_adapter_metadata`; its fields must match the loaded model's
/// module names (checked by hand with `make_fixtures.py --check`: tlkit's PEFT output of the PEFT fixture
/// loads to the same UNet output, difference 0).
struct PeftMetadataTests {
    @Test func configFieldsMatchWhatDiffusersWrites() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("p.safetensors").path
        let result = try CLI.run(["convert", CLI.fixture("adapters/peft"), "--to", "peft", "--dtype", "f32", "-o", out])
        #expect(result.status == 0, "\(result.stderr)")
        let metadata = CLI.json(try CLI.run(["inspect", "--json", out]).stdout)
        #expect(metadata["alpha"] != nil)
        let raw = try Data(contentsOf: URL(fileURLWithPath: out))
        let headerLength = raw.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try JSONSerialization.jsonObject(with: raw.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let config = try JSONSerialization.jsonObject(with: Data(((header["__metadata__"] as! [String: String])["lora_adapter_metadata"]!).utf8)) as! [String: Any]
        #expect(config["text_encoder.target_modules"] as? [String] == ["k_proj", "out_proj", "q_proj", "v_proj"])
        #expect(config["unet.target_modules"] as? [String] == ["to_k", "to_out.0", "to_q", "to_v"])
        #expect(config["unet.r"] as? Int == 4)
        #expect(config["unet.lora_alpha"] as? Double == 8)
        #expect(config["unet.rank_pattern"] as? [String: Int] == ["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q": 2])
        #expect(config["unet.alpha_pattern"] as? [String: Double] == ["mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0": 12])
    }
}
