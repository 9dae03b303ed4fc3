import ArgumentParser
import Catalog
import JSONOutput

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List catalog entries (every version), optionally filtered.")

    static let examples: [Example] = [
        ("Everything in the catalog", "tlkit list"),
        ("The names of the SDXL T-LoRAs, as JSON lines", "tlkit list --method tlora --json | jq -r .name"),
        ("Pony LyCORIS adapters whose name, tags or trigger words mention a style", "tlkit list --base pony --family loha --search watercolor"),
    ]

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Only entries with this tag.")
    var tag: String?

    @Option(help: "Only entries for this base model (sd1, sd2, sdxl, sd3, flux1) or SDXL derivative (pony, illustrious, noobai).")
    var base: String?

    @Option(help: "Only adapters of this family (lora, locon, loha, lokr).")
    var family: String?

    @Option(help: "Only entries whose name, tags, trigger words, training tags (ss_tag_frequency), base or family contain TEXT (any case).")
    var search: String?

    @Option(help: "Only entries of this method.")
    var method: String?

    @Option(help: "Only names matching this glob (* ? [..]).")
    var name: String?

    @OptionGroup var catalog: CatalogOption

    func run() throws {
        try CatalogCLI.run("list") {
            // No catalog yet is an empty one: nothing is listed and nothing is created.
            let entries = try catalog.openIfPresent()?.list(filter: ListFilter(tag: tag, base: base, method: method, nameGlob: name, family: family, search: search)) ?? []
            if json {
                var out = JSONWriter(capacity: entries.count * 600)
                for entry in entries {
                    out.beginObject()
                    entry.addJSON(to: &out)
                    out.endObject()
                    out.newline()
                }
                try CatalogCLI.writeStandardOutput(out.bytes)
                return
            }
            var rows = [["REF", "KIND", "FORMAT", "BASE", "METHOD", "RANK", "SIZE", "STORED", "TAGS"]]
            for e in entries {
                rows.append([e.reference.description, e.facts.kind ?? "-", e.facts.format ?? "-", e.facts.base ?? "-",
                             e.facts.method ?? "-", e.facts.rank.map(String.init) ?? "-", CatalogCLI.bytes(e.size),
                             CatalogCLI.bytes(e.added), e.tags.joined(separator: ",")])
            }
            Console.write(CatalogCLI.table(rows))
        }
    }
}

import Foundation
