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
    ]

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Only entries with this tag.")
    var tag: String?

    @Option(help: "Only entries for this base model (e.g. sdxl_base_v1-0).")
    var base: String?

    @Option(help: "Only entries of this method.")
    var method: String?

    @Option(help: "Only names matching this glob (* ? [..]).")
    var name: String?

    @OptionGroup var catalog: CatalogOption

    func run() throws {
        try CatalogCLI.run("list") {
            // No catalog yet is an empty one: nothing is listed and nothing is created.
            let entries = try catalog.openIfPresent()?.list(filter: ListFilter(tag: tag, base: base, method: method, nameGlob: name)) ?? []
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
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
            var out = ""
            for row in rows {
                var line = ""
                for (cell, width) in zip(row, widths) {
                    if !line.isEmpty { line += "  " }
                    line += cell
                    line += String(repeating: " ", count: width - cell.count)
                }
                while line.last == " " { line.removeLast() }
                out += line + "\n"
            }
            Console.write(out)
        }
    }
}

import Foundation
