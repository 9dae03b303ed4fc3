import Foundation
import Testing

/// Files that are not safetensors, or whose header lies about sizes, are named for what they are
/// by every command, before anything is computed.
struct ForeignInputTests {
    static let adapter = HostileFiles.kohyaFixture
    static let model = CLI.fixture("models/tiny-sdxl.safetensors")

    /// Every command that reads a model or an adapter, given `file` where it reads one.
    static func commands(reading file: String, output: String, catalog: String) -> [[String]] {
        [
            ["inspect", file],
            ["convert", file, "--to", "kohya", "-o", output],
            ["diff", file, adapter],
            ["merge", adapter, file, "-o", output],
            ["merge", adapter, "--into", file, "-o", output],
            ["resize", file, "--rank", "2", "-o", output],
            ["extract", file, model, "--rank", "2", "-o", output],
            ["add", file, "--name", "x", "--catalog", catalog],
            ["sample", "--model", file, "--prompt", "a mug", "--steps", "1", "-o", output + ".png"],
        ]
    }

    /// `diff` answers 2 for an error (1 means "different"); every other command 1.
    static func failureStatus(_ arguments: [String]) -> Int32 { arguments.first == "diff" ? 2 : 1 }

    @Test(arguments: HostileFiles.foreign.map(\.name))
    func foreignFormatIsNamedByEveryCommand(name: String) throws {
        let probe = HostileFiles.foreign.first { $0.name == name }!
        let folder = CLI.temporaryFolder()
        let path = folder.appendingPathComponent(name).path
        try Data(probe.bytes).write(to: URL(fileURLWithPath: path))
        let catalog = CLI.temporaryFolder().appendingPathComponent("catalog.sqlite").path
        for arguments in Self.commands(reading: path, output: folder.appendingPathComponent("out.safetensors").path, catalog: catalog) {
            let result = try CLI.run(arguments)
            #expect(result.status == Self.failureStatus(arguments), "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(path) && result.stderr.contains(probe.word), "\(arguments): \(result.stderr)")
            #expect(!result.stderr.contains("header length"), "\(arguments): \(result.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [name], "nothing written")
    }

    @Test func safetensorsWhoseLengthStartsLikeAPickleIsStillRead() throws {
        // 0x80 0x02 is also a header length of 640 bytes: sniffing applies only to invalid lengths.
        let json = #"{"__metadata__":{"pad":"\#(String(repeating: "x", count: 609))"}}"#
        let bytes = HostileFiles.safetensors(json)
        #expect(Array(bytes.prefix(2)) == [0x80, 0x02])
        let path = CLI.temporaryFolder().appendingPathComponent("pickle-like.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let result = try CLI.run(["inspect", "--json", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(CLI.json(result.stdout)["kind"] as? String == "unknown")
    }

    @Test func largestHeaderLengthIsReportedExactly() throws {
        let path = CLI.temporaryFolder().appendingPathComponent("huge.safetensors").path
        try Data(Array(repeating: 0xFF, count: 8) + Array("{}".utf8)).write(to: URL(fileURLWithPath: path))
        for arguments in [["inspect", path], ["convert", path, "--to", "kohya", "-o", "-"]] {
            let result = try CLI.run(arguments)
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("header length 18446744073709551615 exceeds"), "\(arguments): \(result.stderr)")
        }
    }

    @Test func absurdFactorDimensionsAreRefusedAtTheHeader() throws {
        // [4, 2.5e11] F16 factors: a 2 TB file, sparse, that no layer of any supported model matches.
        let folder = CLI.temporaryFolder()
        let path = folder.appendingPathComponent("absurd.safetensors").path
        try HostileFiles.sparseKohya(path, factors: [(down: [4, 250_000_000_000], up: [320, 4])], dtype: "F16")
        let tensor = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"
        let output = folder.appendingPathComponent("out.safetensors").path
        for arguments in [
            ["convert", path, "--to", "peft", "-o", output],
            ["resize", path, "--rank", "2", "-o", output],
            ["diff", path, Self.adapter],
            ["merge", path, Self.adapter, "-o", output],
        ] {
            let started = Date()
            // Bounded, so that a regression fails here instead of exhausting the machine's memory.
            let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
            let result = try CLI.shell("ulimit -d 4194304; exec timeout -s KILL 60 \"$TLKIT\" \(quoted)")
            #expect(result.status == Self.failureStatus(arguments), "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(tensor) && result.stderr.contains("250000000000"), "\(arguments): \(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 30, "\(arguments): refused only after reading")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
