import Adapters
import ArgumentParser
import Catalog
import Foundation
import SafeTensors

struct AddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Store safetensors files in the catalog (deduplicated, compressed); prints the REF created.",
        discussion: """
            Adding under an existing name makes its next version. Adding bytes identical to a stored version adds nothing and \
            prints that version's REF.

            With --recursive (-r), each DIR is imported: every .safetensors file under it (hidden files and linked folders \
            left out) is added as its own transaction, named after its file name (made a valid name; the path below DIR \
            when another entry has that name already), tagged with the folders between DIR and the file, its trigger words \
            read from the metadata. A file imported before from the same path on this host with the same size, \
            modification time and inode is skipped unread; a changed one becomes the next version of its name. Files \
            that cannot be read or are not adapters are refused and listed at the end; the rest is imported. Standard \
            output gets the REF of each new entry; a progress line goes to standard error when it is a terminal. \
            Exit status: 0 when every file was added, identical to a stored entry or unchanged; 1 when any was refused \
            (or on a failure of the catalog); 2 on a usage error.
            """)

    static let examples: [Example] = [
        ("Store a LoRA with a tag", "tlkit add lora.safetensors --name style --tag anime"),
        ("Store a conversion straight from a pipe", "tlkit convert runs/sks-dog --to kohya -o - | tlkit add - --name sks-dog-kohya"),
        ("Import a folder tree of LoRAs (run it again to pick up only what changed)", "tlkit add -r ~/loras"),
    ]

    @Argument(help: ArgumentHelp("Files to add; - reads standard input (needs --name). With --recursive: folders to import.", valueName: "FILE"))
    var files: [String]

    @Flag(name: [.customShort("r"), .customLong("recursive")], help: "Import every .safetensors file under each folder given (see the description).")
    var recursive = false

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
        if recursive && name != nil { throw ValidationError("--name cannot be used with --recursive: each file is named after its file name") }
        if recursive && files.contains("-") { throw ValidationError("--recursive imports folders; standard input (-) cannot be one") }
        if recursive, let file = files.first(where: { RecursiveImport.fileType($0) != S_IFDIR }) {
            throw ValidationError("\(file): not a folder (--recursive imports folders; add files without it)")
        }
        if files.contains("-") && name == nil { throw ValidationError("adding from standard input needs --name") }
        if let level, !(-7...22).contains(level) { throw ValidationError("--level must be between -7 and 22") }
        if let name { do { try Reference.validate(name: name) } catch { throw ValidationError("\(error)") } }
    }

    func run() throws {
        try CatalogCLI.run("add") {
            if recursive {
                let refused = try catalog.adding { store in
                    try RecursiveImport(folders: files, tags: tags, note: note, level: level, store: store).run()
                }
                if refused > 0 { throw ExitCode(1) }
                return
            }
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
            let outcome = try AddCommand.store(file, path: path, name: entryName, tags: tags, note: note,
                                               facts: catalogFacts(for: file, path: path), level: level, into: store)
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

    /// Stores one file. From just before the commit until the caller calls `Interruption.release()`
    /// (after printing the REF), Ctrl-C waits: a stored entry is always reported.
    static func store(_ file: SafeTensorsFile, path: String, name: String, tags: [String], note: String?, facts: EntryFacts,
                      level: Int?, digests: AddDigests? = nil, into store: any CatalogStore) throws -> AddOutcome {
        do {
            return try store.add(file: file, originalPath: path == "-" ? nil : path, name: name, tags: tags,
                                 note: note, facts: facts, level: level, digests: digests, beforeCommit: Interruption.hold)
        } catch {
            Interruption.release()
            throw error
        }
    }

    /// The default name: the last path component without a `.safetensors` extension, made valid
    /// (`Reference.sanitizedName`).
    static func stem(of path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? path
        if base.hasSuffix(".safetensors") { base.removeLast(".safetensors".count) }
        return Reference.sanitizedName(base)
    }
}
