import Foundation
import Testing

/// The entry point maps the errors of the adapter commands once (`CommandFailure.describing`): one line
/// `tlkit: message`; a conversion request that makes no sense for the input exits 2; any failure of `diff`
/// exits 2, a usage error it finds while running included (its 1 means "different").
struct ExitCodeMappingTests {
    static let peft = CLI.fixture("adapters/peft/pytorch_lora_weights.safetensors")

    @Test func diffReportsEveryFailureOnOneLineWithTwo() throws {
        let folder = CLI.temporaryFolder()
        let file = folder.appendingPathComponent("p.safetensors").path
        try FileManager.default.copyItem(atPath: Self.peft, toPath: file)
        let badWeight = try CLI.run(["diff", "\(file):abc", file])
        #expect(badWeight.status == 2)
        #expect(badWeight.stderr == "tlkit: \(file):abc: the weight 'abc' is not a number (give REF[:WEIGHT], e.g. \(file):0.5)\n",
                "\(badWeight.stderr)")
        let badTimesteps = try CLI.run(["diff", file, file, "--timesteps", "2000"])
        #expect(badTimesteps.status == 2)
        #expect(badTimesteps.stderr == "tlkit: --timesteps takes comma-separated numbers between 0 and 1000\n", "\(badTimesteps.stderr)")
    }

    @Test func aConversionThatMakesNoSenseIsAUsageError() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("o.safetensors").path
        for arguments in [["convert", Self.peft, "--to", "tlora", "-o", out], ["merge", Self.peft, "--to", "tlora", "-o", out]] {
            let result = try CLI.run(arguments)
            #expect(result.status == 2, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.hasPrefix("tlkit: --to tlora from an unscheduled LoRA needs --min-rank")
                    && result.stderr.split(separator: "\n").count == 1, "\(arguments[0]): \(result.stderr)")
        }
    }

    @Test func aRuntimeFailureIsOneLineWithOne() throws {
        let folder = CLI.temporaryFolder()
        let notAnAdapter = folder.appendingPathComponent("empty.safetensors").path
        FileManager.default.createFile(atPath: notAnAdapter, contents: Data())
        let out = folder.appendingPathComponent("o.safetensors").path
        for arguments in [["convert", notAnAdapter, "--to", "kohya", "-o", out], ["resize", notAnAdapter, "--rank", "2", "-o", out]] {
            let result = try CLI.run(arguments)
            #expect(result.status == 1, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.hasPrefix("tlkit: ") && result.stderr.split(separator: "\n").count == 1, "\(arguments[0]): \(result.stderr)")
        }
    }
}
