import ArgumentParser
import Catalog

struct UntagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "untag", abstract: "Remove tags from an entry.")

    static let examples: [Example] = [
        ("Remove a tag", "tlkit untag sks-dog favourite"),
        ("Remove two tags from one version", "tlkit untag sks-dog@2 dogs draft"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest) or NAME@VERSION.", valueName: "REF"))
    var ref: String

    @Argument(help: ArgumentHelp("Tags to remove.", valueName: "TAG"))
    var tags: [String]

    @OptionGroup var catalog: CatalogOption

    func validate() throws {
        _ = try CatalogCLI.reference(ref)
        if tags.isEmpty { throw ValidationError("give at least one TAG") }
    }

    func run() throws {
        try CatalogCLI.run("untag") {
            let now = try catalog.open(create: false).untag(try Reference.parse(ref), tags)
            Console.error("\(ref): tags \(now.isEmpty ? "(none)" : now.joined(separator: ", "))")
        }
    }
}
