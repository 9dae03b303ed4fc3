import Foundation
import Testing

struct InspectTests {
    @Test func singleFileCheckpoint() throws {
        let result = try CLI.run(["inspect", "--json", CLI.fixture("models/tiny-sdxl.safetensors")])
        #expect(result.status == 0, "\(result.stderr)")
        let object = CLI.json(try #require(result.stdoutLines.first))
        #expect(object["kind"] as? String == "checkpoint")
        #expect(object["format"] as? String == "sgm")
        #expect(object["base"] as? String == "sdxl")
        #expect((object["dtypes"] as? [String: Int])?.keys.sorted() == ["F16"])
        #expect(object["components"] as? [String: Bool] == ["unet": true, "vae": true, "text_encoder": true, "text_encoder_2": true])
        let config = try #require(object["config"] as? [String: Any])
        #expect(config["transformer_depths"] as? [Int] == [0, 2, 2])
        #expect(config["context_dim"] as? Int == 128)
    }

    @Test func pipelineFolderAndSingleFileDescribeTheSameModel() throws {
        let result = try CLI.run(["inspect", "--json", CLI.fixture("models/tiny-sdxl"), CLI.fixture("models/tiny-sdxl.safetensors")])
        #expect(result.status == 0)
        let lines = result.stdoutLines.map(CLI.json)
        #expect(lines.count == 2)
        #expect(lines[0]["format"] as? String == "diffusers")
        let configs = lines.map { NSDictionary(dictionary: $0["config"] as? [String: Any] ?? [:]) }
        #expect(configs[0] == configs[1])
        #expect(configs[0].count > 0)
    }

    @Test func standardInput() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")))
        let result = try CLI.run(["inspect", "--json", "-"], stdin: bytes)
        #expect(result.status == 0, "\(result.stderr)")
        let object = CLI.json(try #require(result.stdoutLines.first))
        #expect(object["path"] as? String == "-")
        #expect(object["format"] as? String == "diffusers")
        #expect(object["components"] as? [String: Bool] == ["unet": true, "vae": false, "text_encoder": false, "text_encoder_2": false])
    }

    /// Each kind of bad input: exit 1, one line on stderr naming the file and the problem, JSON `error`.
    @Test(arguments: [
        ("empty", [UInt8](), "shorter than the 8-byte header length"),
        ("truncated", header(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#) + [1, 2, 3], "truncated"),
        ("past-end", [200, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8), "runs past the end"),
        ("over-cap", [0, 0, 0, 0, 1, 0, 0, 0] + Array("{}".utf8), "exceeds the 100,000,000-byte limit"),
        ("not-utf8", { var b = header(#"{"X"}"#); b[10] = 0xFF; return b }(), "not valid UTF-8"),
        ("not-json", header("{nope}"), "not valid JSON"),
        ("negative", header(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}"#) + [0], "non-negative"),
        ("overlap", header(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#) + [0, 0, 0], "overlap"),
        ("gap", header(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#) + [0, 0, 0], "gap"),
        ("shape", header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#) + [UInt8](repeating: 0, count: 8), "shape × dtype is 12 bytes"),
        ("dtype", header(#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#) + [0], "unknown dtype 'Q4'"),
        ("metadata", header(#"{"__metadata__":{"n":1}}"#), "is not a string"),
        ("trailing", header(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#) + [0, 0], "trailing bytes"),
        ("pickle", [0x80, 0x02, 0x7D, 0x71], "pickle"),
    ] as [(String, [UInt8], String)])
    func badInput(name: String, bytes: [UInt8], expected: String) throws {
        let path = CLI.temporaryFolder().appendingPathComponent("\(name).safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let human = try CLI.run(["inspect", path])
        #expect(human.status == 1)
        let lines = human.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(human.stderr)")
        #expect(human.stderr.contains(path), "message must name the file: \(human.stderr)")
        #expect(human.stderr.contains(expected), "\(human.stderr)")
        let json = try CLI.run(["inspect", "--json", path])
        #expect(json.status == 1)
        #expect((CLI.json(json.stdout)["error"] as? String)?.contains(expected) == true)
    }

    @Test func folderThatIsNotAPipeline() throws {
        let folder = CLI.temporaryFolder().path
        let result = try CLI.run(["inspect", folder])
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a diffusers pipeline"), "\(result.stderr)")
    }

    @Test func missingFileAndMixedInputs() throws {
        let result = try CLI.run(["inspect", "--json", "/nonexistent.safetensors", CLI.fixture("models/tiny-sdxl.safetensors")])
        #expect(result.status == 1, "one unreadable input makes the exit status 1")
        #expect(result.stdoutLines.count == 2, "the readable input is still described")
        #expect(result.stderr.contains("/nonexistent.safetensors: cannot open"))
    }

    @Test func usageErrorExitsTwo() throws {
        let result = try CLI.run(["inspect", "--no-such-flag", "x"])
        #expect(result.status == 2)
        let none = try CLI.run(["inspect"])
        #expect(none.status == 2)
    }

    static func header(_ json: String) -> [UInt8] {
        var n = UInt64(json.utf8.count)
        var prefix = [UInt8]()
        for _ in 0..<8 { prefix.append(UInt8(n & 0xFF)); n >>= 8 }
        return prefix + Array(json.utf8)
    }
}

private func header(_ json: String) -> [UInt8] { InspectTests.header(json) }
