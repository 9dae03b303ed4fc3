import Adapters
import ArgumentParser
import Catalog
import Foundation
import JSONOutput
import SafeTensors

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe safetensors files and SDXL pipeline folders.",
        discussion: """
        Identifies SDXL checkpoints (single-file SGM or diffusers), LoRAs (kohya, PEFT, diffusers, attn-procs), \
        official T-LoRA checkpoints and tlkit T-LoRA files, reading only headers. With --json prints one JSON \
        object per input, one per line. Exits 1 when any input could not be read.
        """)

    static let examples: [Example] = [
        ("What a file is: format, rank, schedule, trigger", "tlkit inspect lora.safetensors"),
        ("A catalog entry, as JSON, through a pipe", "tlkit get sks-dog -o - | tlkit inspect --json -"),
    ]

    @Argument(help: "Files or folders to inspect ('-' reads standard input).")
    var inputs: [String]

    @Flag(help: "Print one JSON object per input on stdout.")
    var json = false

    @Flag(help: "List every tensor with its dtype and shape.")
    var tensors = false

    @OptionGroup var catalog: CatalogOption

    func run() throws {
        var failed = false
        for input in inputs {
            do {
                let (identity, file) = try identify(input)
                let tensorList = tensors ? file?.tensors ?? [] : nil
                if json {
                    Console.out(IdentityReport.json(identity, tensors: tensorList).serialized())
                } else {
                    Console.out(IdentityReport.human(identity, tensors: tensorList))
                }
            } catch {
                failed = true
                let message = "\(error)"
                if json {
                    Console.out(JSONValue.object([("path", .string(input)), ("error", .string(message))]).serialized())
                }
                Console.error("tlkit inspect: \(message)")
            }
        }
        if failed { throw ExitCode(1) }
    }

    /// A path (file, folder, `-`) or, when no such path exists, a catalog reference; with the file read,
    /// for its tensor list (each input is opened once: a pipe or FIFO can be read only once).
    private func identify(_ input: String) throws -> (FileIdentity, SafeTensorsFile?) {
        guard input != "-", !FileManager.default.fileExists(atPath: input), !AdapterArgument.looksLikePath(input),
              case let .catalog(ref)? = try? AdapterSource.resolve(input) else {
            var isDirectory: ObjCBool = false
            if input != "-", FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue {
                return (try FileIdentifier.identify(input), nil)
            }
            // A torch.save archive (the official FLUX T-LoRA's lora.pt) is read as data, never unpickled.
            let file = try TorchInput.archive(at: input).map { try $0.safeTensors(name: input) } ?? SafeTensorsFile.open(input)
            return (try FileIdentifier.identify(file: file, path: input), file)
        }
        let file = try catalog.open(create: false).file(ref)
        var identity = try FileIdentifier.identify(file: file, path: "catalog:\(ref)")
        identity.path = input
        return (identity, file)
    }
}
