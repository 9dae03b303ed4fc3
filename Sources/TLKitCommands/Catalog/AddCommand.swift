import Adapters
import ArgumentParser
import Catalog
import SafeTensors

struct AddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Store safetensors files in the catalog (deduplicated, compressed); prints the REF created.",
        discussion: "Adding under an existing name makes its next version. Adding bytes identical to a stored version adds nothing and prints that version's REF.")

    static let examples: [Example] = [
        ("Store a LoRA with a tag", "tlkit add lora.safetensors --name style --tag anime"),
        ("Store a conversion straight from a pipe", "tlkit convert runs/sks-dog --to kohya -o - | tlkit add - --name sks-dog-kohya"),
    ]

    @Argument(help: ArgumentHelp("Files to add; - reads standard input (needs --name).", valueName: "FILE"))
    var files: [String]

    @Option(help: "Name to store under (default: the file name without .safetensors).")
    var name: String?

    @Option(name: .customLong("tag"), help: "A tag to attach (repeatable).")
    var tags: [String] = []

    @Option(help: "A free-text note.")
    var note: String?

    @Option(parsing: .unconditional, help: "zstd level, -7 to 22 (default \(Codec.defaultLevel)).")
    var level: Int?

    @OptionGroup var catalog: CatalogOption

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one FILE (or - for standard input)") }
        if files.contains("-") && name == nil { throw ValidationError("adding from standard input needs --name") }
        if let level, !(-7...22).contains(level) { throw ValidationError("--level must be between -7 and 22") }
        if let name { do { try Reference.validate(name: name) } catch { throw ValidationError("\(error)") } }
    }

    func run() throws {
        try CatalogCLI.run("add") {
            try catalog.adding { store in try add(to: store) }
        }
    }

    func add(to store: any CatalogStore) throws {
        for argument in files {
            // Adapter folders (a training folder, checkpoint-N/, a PEFT folder) stand for their file;
            // the file's facts are read where it lies, so an official checkpoint finds its hparams.
            let path = AdapterLocation.resolve(argument) ?? argument
            let file = try SafeTensorsFile.open(path)
            let entryName = name ?? AddCommand.stem(of: argument)
            // From just before the commit until the REF is printed, Ctrl-C waits: a stored entry is always reported.
            let outcome: AddOutcome
            do {
                outcome = try store.add(file: file, originalPath: path == "-" ? nil : path, name: entryName, tags: tags,
                                        note: note, facts: catalogFacts(for: file, path: path), level: level,
                                        beforeCommit: Interruption.hold)
            } catch {
                Interruption.release()
                throw error
            }
            defer { Interruption.release() }
            switch outcome {
            case let .added(reference, stats):
                Console.out(reference.description)
                Console.error("\(path): added as \(reference): \(stats.tensors) tensors (\(stats.newBlobs) new, \(stats.sharedBlobs) shared), \(CatalogCLI.bytes(stats.size)) → \(CatalogCLI.bytes(stats.addedBytes)) added to the catalog")
            case let .alreadyStored(reference):
                Console.out(reference.description)
                Console.error("\(path): identical bytes already stored as \(reference); nothing added")
            }
        }
    }

    /// The default name: the last path component without a `.safetensors` extension.
    static func stem(of path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? path
        if base.hasSuffix(".safetensors") { base.removeLast(".safetensors".count) }
        if base.hasPrefix("-") || base.contains("@") || base.isEmpty {
            base = base.replacingOccurrences(of: "@", with: "_")
            if base.hasPrefix("-") || base.isEmpty { base = "_" + base }
        }
        return base
    }
}
