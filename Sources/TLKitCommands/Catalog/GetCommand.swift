import ArgumentParser
import Catalog
import SafeTensors

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Write an entry's original file, byte for byte.",
        discussion: "The rebuilt file is checked against the SHA-256 recorded when it was added before it is moved into place.")

    static let examples: [Example] = [
        ("Write an entry to a file", "tlkit get sks-dog@2 -o sks-dog.safetensors"),
        ("Check the bytes against a published hash", "tlkit get sks-dog -o - | sha256sum"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest) or NAME@VERSION.", valueName: "REF"))
    var ref: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output file, or - for standard output (default: NAME.safetensors here).", valueName: "FILE"))
    var output: String?

    @OptionGroup var catalog: CatalogOption

    func validate() throws { _ = try CatalogCLI.reference(ref) }

    func run() throws {
        try CatalogCLI.run("get") {
            let reference = try Reference.parse(ref)
            let store = try catalog.open(create: false)
            let destination = output ?? ((reference.name.split(separator: "/").last.map(String.init) ?? reference.name) + ".safetensors")
            let out = try AtomicOutput(destination)
            do {
                try store.write(reference, to: out)
                try out.commit()
            } catch {
                out.abandon()
                throw error
            }
            if destination != "-" { Console.error("wrote \(destination)") }
        }
    }
}
