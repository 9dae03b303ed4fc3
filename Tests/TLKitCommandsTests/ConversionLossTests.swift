import Foundation
import Testing

/// A conversion never loses a module silently: what the target cannot hold fails the conversion, naming
/// the modules, unless --skip-unsupported drops them (then the report lists them); LoRA on convolution
/// layers (LoCon) is carried by kohya, PEFT and tlkit files alike.
struct ConversionLossTests {
    /// F32 tensors in a safetensors file, values i·0.001 − 0.01 so that every module differs.
    static func write(_ tensors: [(name: String, shape: [Int])], to path: String) throws {
        var entries: [String] = [], data: [UInt8] = [], offset = 0
        for (k, t) in tensors.enumerated() {
            let count = t.shape.reduce(1, *)
            let values = (0..<count).map { Float(($0 + 7 * k) % 23) * 0.001 - 0.01 }
            data += values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
            entries.append("\"\(t.name)\":{\"dtype\":\"F32\",\"shape\":\(t.shape),\"data_offsets\":[\(offset),\(offset + 4 * count)]}")
            offset += 4 * count
        }
        try Data(InspectTests.header("{" + entries.joined(separator: ",") + "}") + data).write(to: URL(fileURLWithPath: path))
    }

    /// A kohya LoCon at SDXL's shapes: an attention projection, a 3×3 resnet convolution, a 1×1 skip
    /// connection, a downsampler and a resnet's time-embedding projection; `extra` adds a module no SDXL
    /// layer has.
    static func locon(_ folder: URL, extra: Bool = false) throws -> String {
        let r = 2
        var modules: [(String, [Int], [Int])] = [
            ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", [r, 640], [640, r]),
            ("lora_unet_input_blocks_1_0_in_layers_2", [r, 320, 3, 3], [320, r, 1, 1]),
            ("lora_unet_input_blocks_4_0_skip_connection", [r, 320, 1, 1], [640, r, 1, 1]),
            ("lora_unet_input_blocks_3_0_op", [r, 320, 3, 3], [320, r, 1, 1]),
            ("lora_unet_input_blocks_1_0_emb_layers_1", [r, 1280], [320, r]),
        ]
        if extra { modules.append(("lora_unet_no_such_layer", [r, 8], [8, r])) }
        var tensors: [(name: String, shape: [Int])] = []
        for (name, down, up) in modules {
            tensors += [(name + ".alpha", []), (name + ".lora_down.weight", down), (name + ".lora_up.weight", up)]
        }
        let path = folder.appendingPathComponent(extra ? "locon-extra.safetensors" : "locon.safetensors").path
        try write(tensors, to: path)
        return path
    }

    static func header(_ path: String) throws -> [String: Any] {
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = raw.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        return try JSONSerialization.jsonObject(with: raw.subdata(in: 8..<(8 + length))) as! [String: Any]
    }

    static func shape(_ header: [String: Any], _ name: String) -> [Int]? { (header[name] as? [String: Any])?["shape"] as? [Int] }

    @Test func loconSurvivesPeftAndBackExactly() throws {
        let folder = CLI.temporaryFolder()
        let source = try Self.locon(folder)
        let peft = folder.appendingPathComponent("p.safetensors").path, back = folder.appendingPathComponent("k.safetensors").path
        let toPeft = try CLI.run(["convert", source, "--to", "peft", "-o", peft, "--json"])
        #expect(toPeft.status == 0, "\(toPeft.stderr)")
        let report = CLI.json(toPeft.stdout)
        #expect((report["modules"] as? [Any])?.count == 5)
        #expect((report["dropped"] as? [Any])?.isEmpty == true)
        // PEFT's conv LoRA: lora_A a Conv2d(Cin, r, k), lora_B a Conv2d(r, Cout, 1).
        let header = try Self.header(peft)
        #expect(Self.shape(header, "unet.down_blocks.0.resnets.0.conv1.lora_A.weight") == [2, 320, 3, 3])
        #expect(Self.shape(header, "unet.down_blocks.0.resnets.0.conv1.lora_B.weight") == [320, 2, 1, 1])
        #expect(Self.shape(header, "unet.down_blocks.1.resnets.0.conv_shortcut.lora_B.weight") == [640, 2, 1, 1])
        #expect(Self.shape(header, "unet.down_blocks.0.downsamplers.0.conv.lora_A.weight") == [2, 320, 3, 3])
        #expect(Self.shape(header, "unet.down_blocks.0.resnets.0.time_emb_proj.lora_A.weight") == [2, 1280])
        let toKohya = try CLI.run(["convert", peft, "--to", "kohya", "-o", back])
        #expect(toKohya.status == 0, "\(toKohya.stderr)")
        #expect(Self.shape(try Self.header(back), "lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight") == [2, 320, 3, 3])
        let diff = try CLI.run(["diff", source, back])
        #expect(diff.status == 0, "round trip changed the adapter: \(diff.stdout)\(diff.stderr)")
        // A T-LoRA file carries convolutions too.
        let tlora = folder.appendingPathComponent("t.safetensors").path
        #expect(try CLI.run(["convert", source, "--to", "tlora", "--min-rank", "1", "-o", tlora]).status == 0)
        #expect(try CLI.run(["diff", source, tlora]).status == 0)
    }

    @Test func anUnknownModuleFailsTheConversionNamingIt() throws {
        let folder = CLI.temporaryFolder()
        let source = try Self.locon(folder, extra: true)
        let out = folder.appendingPathComponent("out.safetensors").path
        let refused = try CLI.run(["convert", source, "--to", "peft", "-o", out])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("lora_unet_no_such_layer") && refused.stderr.contains("--skip-unsupported"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))

        let skipped = try CLI.run(["convert", source, "--to", "peft", "-o", out, "--skip-unsupported", "--json"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        let dropped = CLI.json(skipped.stdout)["dropped"] as? [[String: Any]] ?? []
        #expect(dropped.map { $0["module"] as? String } == ["lora_unet_no_such_layer"])
        #expect((CLI.json(skipped.stdout)["modules"] as? [Any])?.count == 5)

        let human = try CLI.run(["convert", source, "--to", "tlora", "--min-rank", "1", "-o", out, "--skip-unsupported"])
        #expect(human.status == 0, "\(human.stderr)")
        #expect(human.stderr.contains("1 dropped") && human.stderr.contains("dropped: lora_unet_no_such_layer"), "\(human.stderr)")
    }

    @Test func theOfficialLayoutRefusesWhatItCannotHold() throws {
        let folder = CLI.temporaryFolder()
        let source = folder.appendingPathComponent("t.safetensors").path
        #expect(try CLI.run(["convert", try Self.locon(folder), "--to", "tlora", "--min-rank", "1", "-o", source]).status == 0)
        let out = folder.appendingPathComponent("official").path
        let refused = try CLI.run(["convert", source, "--to", "tlora-official", "-o", out])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("unet.down_blocks.0.resnets.0.conv1") && refused.stderr.contains("4 module(s)"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let skipped = try CLI.run(["convert", source, "--to", "tlora-official", "-o", out, "--skip-unsupported", "--json"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        let dropped = (CLI.json(skipped.stdout)["dropped"] as? [[String: Any]] ?? []).compactMap { $0["module"] as? String }
        #expect(dropped.count == 4 && dropped.contains("unet.down_blocks.0.downsamplers.0.conv"), "\(dropped)")
        #expect((CLI.json(skipped.stdout)["modules"] as? [Any])?.count == 1)
    }

    @Test func peftOutputOfAnSDXLAdapterPointsToKohya() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("p.safetensors").path
        let result = try CLI.run(["convert", CLI.fixture("adapters/kohya/kohya_from_peft.safetensors"), "--to", "peft", "-o", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("ComfyUI and A1111 do not load PEFT-named UNet LoRAs") && result.stderr.contains("--to kohya"), "\(result.stderr)")
        let kohya = try CLI.run(["convert", CLI.fixture("adapters/peft"), "--to", "kohya", "-o", out])
        #expect(kohya.status == 0 && !kohya.stderr.contains("ComfyUI"), "\(kohya.stderr)")
    }
}
