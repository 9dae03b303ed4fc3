import ArgumentParser
import Catalog

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-hash stored tensors and rebuilt files (all entries, or one).",
        discussion: "Exit status: 0 intact, 1 corrupt, 2 any error (like cmp).")

    static let examples: [Example] = [
        ("Check every entry", "tlkit verify"),
        ("Check one entry in a script", "tlkit verify sks-dog || echo 'sks-dog is corrupt' >&2"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest) or NAME@VERSION; all entries when omitted.", valueName: "REF"))
    var ref: String?

    @OptionGroup var catalog: CatalogOption

    func validate() throws { if let ref { _ = try CatalogCLI.reference(ref) } }

    func run() throws {
        var problems: [Problem] = []
        try CatalogCLI.run("verify", failureCode: 2) {
            problems = try catalog.open(create: false).verify(try ref.map(Reference.parse))
        }
        for problem in problems { Console.out("\(problem)") }
        if problems.isEmpty {
            Console.error("\(ref ?? "catalog"): intact")
        } else {
            Console.error("\(ref ?? "catalog"): \(problems.count) problem\(problems.count == 1 ? "" : "s") found")
            throw ExitCode(1)
        }
    }
}
