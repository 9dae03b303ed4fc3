import ArgumentParser
import Catalog

struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove an entry (or every version of a name); 'tlkit gc' then frees unused tensors.")

    static let examples: [Example] = [
        ("Remove one version", "tlkit rm sks-dog@1"),
        ("Remove every version, then free the space", "tlkit rm sks-dog --all-versions && tlkit gc"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest) or NAME@VERSION.", valueName: "REF"))
    var ref: String

    @Flag(help: "Remove every version of the name.")
    var allVersions = false

    @OptionGroup var catalog: CatalogOption

    func validate() throws { _ = try CatalogCLI.reference(ref) }

    func run() throws {
        try CatalogCLI.run("rm") {
            let removed = try catalog.open(create: false).remove(try Reference.parse(ref), allVersions: allVersions)
            for reference in removed { Console.error("removed \(reference)") }
            Console.error("run 'tlkit gc' to free the space of tensors no other entry uses")
        }
    }
}
