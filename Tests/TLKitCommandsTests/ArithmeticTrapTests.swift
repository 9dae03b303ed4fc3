import Foundation
import Testing

/// Numbers from files and flags that used to reach a trapping conversion or overflow-checked
/// arithmetic: each is now answered with an exit status and a message, never a signal.
struct ArithmeticTrapTests {
    /// A copy of a safetensors file with metadata entries replaced (the data section is unchanged).
    static func withMetadata(_ source: String, _ changes: [String: String], in folder: URL, name: String) throws -> String {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let length = bytes.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as! [String: Any]
        header["__metadata__"] = ((header["__metadata__"] as? [String: String]) ?? [:]).merging(changes) { $1 }
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header))
        var prefix = [UInt8](), n = UInt64(json.count)
        for _ in 0..<8 { prefix.append(UInt8(n & 0xFF)); n >>= 8 }
        let path = folder.appendingPathComponent(name).path
        try Data(prefix + json + bytes[(8 + length)...]).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func notASignal(_ result: CLI.Result, _ what: String) {
        #expect(result.status == 0 || result.status == 1 || result.status == 2, "\(what): exit \(result.status) \(result.stderr)")
    }

    @Test func hugeScheduleNumbersInMetadata() throws {
        let folder = CLI.temporaryFolder()
        let tlora = folder.appendingPathComponent("t.safetensors").path
        let made = try CLI.run(["convert", CLI.fixture("adapters/official-ortho"), "--to", "tlora", "-o", tlora])
        #expect(made.status == 0, "\(made.stderr)")
        let cases: [[String: String]] = [
            ["tlora.components_per_rank": "9223372036854775807"], ["tlora.components_per_rank": "-3"],
            ["tlora.max_rank": "9223372036854775807"], ["tlora.max_rank": "4611686018427387904", "tlora.min_rank": "0"],
            ["tlora.timesteps": "9223372036854775807"], ["tlora.rank_alpha": "inf"], ["tlora.rank_alpha": "nan"],
        ]
        for (i, change) in cases.enumerated() {
            let hostile = try Self.withMetadata(tlora, change, in: folder, name: "h\(i).safetensors")
            for command in [["convert", hostile, "--to", "kohya", "-o", folder.appendingPathComponent("o\(i).safetensors").path],
                            ["diff", hostile, tlora, "--timesteps", "999,0"], ["inspect", "--json", hostile]] {
                Self.notASignal(try CLI.run(command), "\(change) \(command[0])")
            }
        }
    }

    @Test func hugeNumbersInOfficialHparams() throws {
        let folder = CLI.temporaryFolder()
        let source = CLI.fixture("adapters/official-ortho")
        for (i, value) in ["1e300", ".inf", "-.inf", ".nan", "9.3e18"].enumerated() {
            let copy = folder.appendingPathComponent("run\(i)")
            try FileManager.default.copyItem(atPath: source, toPath: copy.path)
            let hparams = copy.appendingPathComponent("logs/hparams.yml")
            let text = try String(contentsOf: hparams, encoding: .utf8)
                .replacingOccurrences(of: "\nlora_rank: 8\n", with: "\nlora_rank: \(value)\n")
                .replacingOccurrences(of: "\nmin_rank: 4\n", with: "\nmin_rank: \(value)\n")
            try text.write(to: hparams, atomically: true, encoding: .utf8)
            let out = folder.appendingPathComponent("o\(i).safetensors").path
            Self.notASignal(try CLI.run(["convert", copy.path, "--to", "kohya", "-o", out]), "hparams \(value)")
            Self.notASignal(try CLI.run(["inspect", "--json", copy.path]), "inspect hparams \(value)")
        }
    }

    /// Large but finite weights are numbers like any other: `merged_from` metadata used to convert them to Int.
    @Test func largeFiniteWeightsAreWritten() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("m.safetensors").path
        let result = try CLI.run(["merge", Poison.kohya + ":1e20", "-o", out])
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func flagsThatWouldOverflowSizes() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("x.safetensors").path
        for extra in [["--num", "4611686018427387904"], ["--width", "4611686018427387904"], ["--height", "9223372036854775800"]] {
            let result = try CLI.run(["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--embeddings", SampleTests.inputs,
                                      "--steps", "1", "--output-latents", out] + extra)
            #expect(result.status == 2, "\(extra): \(result.status) \(result.stderr)")
        }
        let train = try CLI.run(["train", "--model", CLI.fixture("models/tiny-sdxl"), "--image", CLI.fixture("images/demo.jpg"),
                                 "--class", "mug", "--output", out, "--rank", "4611686018427387904"])
        #expect(train.status == 2, "\(train.stderr)")
    }
}
