import ArgumentParser
import Catalog

struct TagCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Add tags to an entry.")

    static let examples: [Example] = [
        ("Tag the newest version", "tlkit tag sks-dog favourite dogs"),
        ("Then list what carries the tag", "tlkit list --tag favourite"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest) or NAME@VERSION.", valueName: "REF"))
    var ref: String

    @Argument(help: ArgumentHelp("Tags to add.", valueName: "TAG"))
    var tags: [String]

    @OptionGroup var catalog: CatalogOption

    func validate() throws {
        _ = try CatalogCLI.reference(ref)
        if tags.isEmpty || tags.contains("") { throw ValidationError("give at least one non-empty TAG") }
    }

    func run() throws {
        try CatalogCLI.run("tag") {
            let now = try catalog.open(create: false).tag(try Reference.parse(ref), tags)
            Console.error("\(ref): tags \(now.joined(separator: ", "))")
        }
    }
}
