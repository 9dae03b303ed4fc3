import ArgumentParser
import Catalog

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an empty catalog: a SQLite file, or the catalog's tables in a PostgreSQL database.",
        discussion: "The first 'add' also creates the catalog; 'init' prepares a server's database before many writers use it. A catalog already there is left as it is; one from a newer tlkit is refused. On a server, --reader and --writer grant existing roles access, enforced by PostgreSQL: a reader may list, show, get and verify and nothing else; a writer may also add, rm, tag, untag, gc and push.")

    static let examples: [Example] = [
        ("Prepare a catalog on a PostgreSQL server", "tlkit init --catalog postgresql://lora@db.example/lora"),
        ("The same over the server's Unix socket", "tlkit init --catalog 'postgresql://lora@/lora?host=/var/run/postgresql'"),
        ("Let the artists read and the training farm write", "tlkit init --catalog postgresql://lora@db.example/lora --reader artists --writer farm"),
    ]

    @Option(name: .customLong("reader"), help: ArgumentHelp("A server role to give read-only access (repeatable).", valueName: "ROLE"))
    var readers: [String] = []

    @Option(name: .customLong("writer"), help: ArgumentHelp("A server role to give read-write access (repeatable).", valueName: "ROLE"))
    var writers: [String] = []

    @OptionGroup var catalog: CatalogOption

    func validate() throws {
        if (readers + writers).contains("") { throw ValidationError("--reader and --writer need a role name") }
        if !(readers + writers).isEmpty && CatalogLocation.urlScheme(catalog.resolved) == nil {
            throw ValidationError("--reader and --writer apply to a catalog on a PostgreSQL server (--catalog postgresql://...); a catalog file has the file's permissions")
        }
        if let both = readers.first(where: writers.contains) { throw ValidationError("the role '\(both)' cannot be both --reader and --writer") }
    }

    func run() throws {
        try CatalogCLI.run("init") {
            let store = try catalog.open(create: true)
            Console.error("\(store.location): catalog ready")
            if readers.isEmpty && writers.isEmpty { return }
            try CatalogRoles.grant(store, readers: readers, writers: writers)
            for role in readers { Console.error("\(role): may read the catalog") }
            for role in writers { Console.error("\(role): may read and change the catalog") }
        }
    }
}
