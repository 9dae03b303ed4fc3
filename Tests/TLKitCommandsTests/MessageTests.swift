import Foundation
import Testing

/// Messages name what is wrong in the user's own terms.
struct MessageTests {
    /// A name with a folder separator or a .safetensors suffix is a file the user meant, not a catalog entry.
    @Test func aMistypedPathIsAMissingFile() throws {
        let folder = CLI.temporaryFolder()
        let out = folder.appendingPathComponent("o.safetensors").path
        let adapter = CLI.fixture("adapters/peft")
        for missing in ["nosuch.safetensors", "runs/nosuch"] {
            for arguments in [["convert", missing, "--to", "kohya", "-o", out], ["diff", adapter, missing], ["merge", missing, "-o", out],
                              ["resize", missing, "--rank", "2", "-o", out], ["inspect", missing]] {
                let result = try CLI.run(arguments, environment: ["TLKIT_CATALOG": folder.appendingPathComponent("c.sqlite").path])
                #expect(result.status != 0)
                #expect(result.stderr.lowercased().contains("no such file") && !result.stderr.contains("catalog"),
                        "\(arguments[0]) \(missing): \(result.stderr)")
            }
        }
    }

    @Test func aWeightThatIsNotANumberIsSaid() throws {
        let folder = CLI.temporaryFolder()
        let file = folder.appendingPathComponent("p.safetensors").path
        try FileManager.default.copyItem(atPath: CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors"), toPath: file)
        for argument in ["\(file):abc", "missing.safetensors:abc"] {
            let merge = try CLI.run(["merge", argument, "-o", folder.appendingPathComponent("m.safetensors").path])
            #expect(merge.status == 2)
            #expect(merge.stderr.contains("the weight 'abc' is not a number"), "\(merge.stderr)")
        }
        let sample = try CLI.run(["sample", "--model", CLI.fixture("models/tiny-sdxl"), "--prompt", "x", "--adapter", "\(file):abc",
                                  "--output-latents", folder.appendingPathComponent("l.safetensors").path])
        #expect(sample.status == 2)
        #expect(sample.stderr.contains("is not a number"), "\(sample.stderr)")
        // A weight after a real file still works.
        #expect(try CLI.run(["merge", "\(file):0.5", "-o", folder.appendingPathComponent("m.safetensors").path]).status == 0)
    }

    @Test func convertFromStandardInputNeedsAnOutput() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")))
        let result = try CLI.run(["convert", "-", "--to", "peft"], stdin: bytes)
        #expect(result.status == 2)
        #expect(result.stderr.contains("-o"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "-.peft.safetensors"))
    }

    @Test func countsAgreeWithTheirUnitsAndNouns() throws {
        let folder = CLI.temporaryFolder()
        // 10^12 one-byte values: a sparse file, so only the header takes space.
        let path = folder.appendingPathComponent("huge.safetensors").path
        let header = InspectTests.header("{\"w\":{\"dtype\":\"U8\",\"shape\":[1000000,1000000],\"data_offsets\":[0,1000000000000]}}")
        FileManager.default.createFile(atPath: path, contents: Data(header))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(header.count) + 1_000_000_000_000)
        try handle.close()
        let inspect = try CLI.run(["inspect", path])
        #expect(inspect.stdout.contains("1.0T parameters"), "\(inspect.stdout)\(inspect.stderr)")

        let merged = try CLI.run(["merge", CLI.fixture("adapters/peft"), "-o", folder.appendingPathComponent("m.safetensors").path])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stderr.contains("merged 1 adapter ("), "\(merged.stderr)")
    }

    /// Standard input is `-` in every message, as on the command line.
    @Test func standardInputIsCalledDash() throws {
        let garbage = Data("not a safetensors file at all".utf8)
        let folder = CLI.temporaryFolder()
        for arguments in [["inspect", "-"], ["convert", "-", "--to", "kohya", "-o", folder.appendingPathComponent("o.safetensors").path],
                          ["diff", "-", CLI.fixture("adapters/peft")]] {
            let result = try CLI.run(arguments, stdin: garbage)
            #expect(result.status != 0)
            #expect(result.stderr.contains("-: ") && !result.stderr.contains("<stdin>"), "\(arguments[0]): \(result.stderr)")
        }
    }
}
