import ArgumentParser
import Catalog
import JSONOutput

/// `push` and `pull`: one copy (`CatalogTransfer.copy`) seen from either end. The catalog of
/// `--catalog` / `$TLKIT_CATALOG` is the local end; `--to` / `--from` names the other.
private let copyDiscussion = """
    Each REF keeps its name and version in the destination, with its metadata, note, source, time of \
    adding and tags. A version the destination already holds with the same bytes is left as it is (only \
    tags it lacks are added); one it holds with other bytes is a conflict and nothing is copied. Only \
    tensors the destination lacks are sent, as stored (no recompression), each checked against its hash \
    first. The destination receives everything in one transaction, and is created when missing. \
    Catalogs are files or postgresql:// URLs, in any combination.
    """

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Copy entries from the catalog to another one, sending only the tensors it lacks.",
        discussion: copyDiscussion)

    static let examples: [Example] = [
        ("Share a training run's checkpoints with the team's server", "tlkit push sks-dog --all-versions --to postgresql://lora@db.example/lora"),
        ("Copy one version into another catalog file", "tlkit push style@2 --to /srv/loras/catalog.sqlite"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest version) or NAME@VERSION.", valueName: "REF"))
    var refs: [String]

    @Option(name: .customLong("to"), help: ArgumentHelp("The catalog to copy to: a file or a postgresql:// URL.", valueName: "CATALOG"))
    var destination: String

    @Flag(help: "Copy every version of each NAME.")
    var allVersions = false

    @Flag(help: "Print one JSON document.")
    var json = false

    @OptionGroup var catalog: CatalogOption

    func validate() throws { try CopyReport.validate(refs, other: destination, option: "--to") }

    func run() throws {
        try CatalogCLI.run("push") {
            let source = try catalog.open(create: false)
            let result = try CatalogOption.adding(at: destination) { target in
                (try CatalogTransfer.copy(try refs.map(Reference.parse), allVersions: allVersions, from: source, to: target), target.location)
            }
            CopyReport.print(result.0, from: source.location, to: result.1, json: json)
        }
    }
}

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Copy entries from another catalog into the catalog, fetching only the tensors it lacks.",
        discussion: copyDiscussion)

    static let examples: [Example] = [
        ("Fetch the newest version of a LoRA from the team's server", "tlkit pull style --from postgresql://lora@db.example/lora"),
        ("Fetch every version of a run from another catalog file", "tlkit pull sks-dog --all-versions --from /mnt/farm/catalog.sqlite"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest version) or NAME@VERSION.", valueName: "REF"))
    var refs: [String]

    @Option(name: .customLong("from"), help: ArgumentHelp("The catalog to copy from: a file or a postgresql:// URL.", valueName: "CATALOG"))
    var origin: String

    @Flag(help: "Copy every version of each NAME.")
    var allVersions = false

    @Flag(help: "Print one JSON document.")
    var json = false

    @OptionGroup var catalog: CatalogOption

    func validate() throws { try CopyReport.validate(refs, other: origin, option: "--from") }

    func run() throws {
        try CatalogCLI.run("pull") {
            let source = try CatalogStores.open(origin, create: false)
            let result = try catalog.adding { target in
                (try CatalogTransfer.copy(try refs.map(Reference.parse), allVersions: allVersions, from: source, to: target), target.location)
            }
            CopyReport.print(result.0, from: source.location, to: result.1, json: json)
        }
    }
}

extension PushCommand: HasExamples {}
extension PullCommand: HasExamples {}

/// What `push` and `pull` check and print alike. Standard output gets each REF (as in the destination)
/// on a line, or with `--json` one document; the human report goes to standard error. Locations are
/// printed as the catalogs give them: a URL without its password.
enum CopyReport {
    static func validate(_ refs: [String], other: String, option: String) throws {
        if refs.isEmpty { throw ValidationError("give at least one REF (NAME or NAME@VERSION)") }
        for ref in refs { _ = try CatalogCLI.reference(ref) }
        if other.isEmpty { throw ValidationError("\(option) needs a catalog: a file or a postgresql:// URL") }
    }

    static func print(_ result: CopyResult, from: String, to: String, json: Bool) {
        if json {
            var o = JSONWriter()
            o.beginObject()
            o.add("from", from)
            o.add("to", to)
            o.add("entries", raw: "[" + result.items.map { item in
                var j = JSONWriter()
                j.beginObject()
                j.add("ref", item.reference.description)
                j.add("status", item.status.rawValue)
                j.add("sha256", item.sha256)
                j.add("tags_added", item.tagsAdded)
                j.endObject()
                return j.text
            }.joined(separator: ",") + "]")
            o.add("tensors_sent", result.tensorsSent)
            o.add("stored_bytes_sent", result.storedBytesSent)
            o.add("tensors_present", result.tensorsPresent)
            o.endObject()
            Console.out(o.text)
        } else {
            for item in result.items { Console.out(item.reference.description) }
        }
        for item in result.items {
            let tags = item.tagsAdded.isEmpty ? "" : " (tags added: \(item.tagsAdded.joined(separator: ", ")))"
            switch item.status {
            case .copied: Console.error("\(item.reference): copied to \(to)\(tags)")
            case .present: Console.error("\(item.reference): already in \(to) with the same bytes\(tags)")
            }
        }
        Console.error("\(result.tensorsSent) tensors sent (\(CatalogCLI.bytes(result.storedBytesSent)) stored), \(result.tensorsPresent) already there")
    }
}
