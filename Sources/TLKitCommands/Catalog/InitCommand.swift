import ArgumentParser
import Catalog

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an empty catalog: a SQLite file, or the catalog's tables in a PostgreSQL database.",
        discussion: "The first 'add' also creates the catalog; 'init' prepares a server's database before many writers use it. A catalog already there is left as it is; one from a newer tlkit is refused.")

    static let examples: [Example] = [
        ("Prepare a catalog on a PostgreSQL server", "tlkit init --catalog postgresql://lora@db.example/lora"),
        ("The same over the server's Unix socket", "tlkit init --catalog 'postgresql://lora@/lora?host=/var/run/postgresql'"),
    ]

    @OptionGroup var catalog: CatalogOption

    func run() throws {
        try CatalogCLI.run("init") {
            let store = try catalog.open(create: true)
            Console.error("\(store.location): catalog ready")
        }
    }
}
