import ArgumentParser
import Catalog

struct GcCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Delete tensors no entry uses and compact the catalog file.")

    static let examples: [Example] = [
        ("Free the tensors of removed entries", "tlkit gc"),
        ("The same for another catalog", "tlkit gc --catalog /srv/loras/catalog.sqlite"),
    ]

    @OptionGroup var catalog: CatalogOption

    func run() throws {
        try CatalogCLI.run("gc") {
            let stats = try catalog.open(create: false).gc()
            Console.error("removed \(stats.blobsRemoved) unused tensors (\(CatalogCLI.bytes(stats.storedBytesRemoved)) stored); catalog file \(CatalogCLI.bytes(stats.fileSizeBefore)) → \(CatalogCLI.bytes(stats.fileSizeAfter))")
        }
    }
}
