import ArgumentParser
import Catalog
import JSONOutput

struct DupsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dups",
        abstract: "Find duplicates in the catalog: identical files or tensor data, shared tensors, near-duplicate adapters.",
        discussion: """
            Reports entries with identical files (same SHA-256) and with identical tensor data but other metadata (same \
            AutoV3); groups of entries that share stored tensors, with the raw bytes deduplication saves; and pairs of \
            adapters for the same base whose delta W (all modules, unmasked) have a cosine of at least --threshold. The cosine is \
            computed from the factors (the Gram products of 'tlkit diff'), only for pairs whose signatures (per-module norms and a random sketch) allow it. \
            Exit status: 0 whether or not duplicates were found, 1 on a failure, 2 on a usage error.
            """)

    static let examples: [Example] = [
        ("Everything that looks duplicated", "tlkit dups"),
        ("Near-duplicates only, stricter, as JSON", "tlkit dups --threshold 0.999 --json | jq '.near_duplicates[]'"),
    ]

    @Flag(help: "Print one JSON document.")
    var json = false

    @Option(help: "The cosine of delta W at which two adapters count as near-duplicates (0 to 1; default 0.99).")
    var threshold: Double = 0.99

    @OptionGroup var catalog: CatalogOption

    func validate() throws {
        guard threshold > 0 && threshold <= 1 else { throw ValidationError("--threshold must be above 0 and at most 1") }
    }

    func run() throws {
        try CatalogCLI.run("dups") {
            guard let store = try catalog.openIfPresent() else {
                if json { Console.out(DupsCommand.json(DuplicateReport())) }
                return
            }
            let report = try DuplicateReport.examine(store, threshold: threshold)
            if json {
                Console.out(DupsCommand.json(report))
            } else {
                Console.write(DupsCommand.table(report))
            }
            for (reference, why) in report.notCompared { Console.error("\(reference): not compared: \(why)") }
            Console.error("\(report.identicalFiles.count) identical files, \(report.identicalData.count) identical tensor data, \(report.sharing.count) groups sharing tensors, \(report.near.count) near-duplicates among \(report.compared) adapters")
        }
    }

    static func refs(_ references: [Reference]) -> String {
        "[" + references.map { JSONWriter.quote($0.description) }.joined(separator: ",") + "]"
    }

    static func json(_ report: DuplicateReport) -> String {
        func groups(_ list: [DuplicateReport.Group], key: StaticString) -> String {
            "[" + list.map { g in
                var o = JSONWriter()
                o.beginObject(); o.add(key, g.hash); o.add("refs", raw: refs(g.references)); o.endObject()
                return o.text
            }.joined(separator: ",") + "]"
        }
        var o = JSONWriter()
        o.beginObject()
        o.add("identical_files", raw: groups(report.identicalFiles, key: "sha256"))
        o.add("identical_data", raw: groups(report.identicalData, key: "autov3"))
        o.add("shared_tensors", raw: "[" + report.sharing.map { s in
            var j = JSONWriter()
            j.beginObject(); j.add("refs", raw: refs(s.references)); j.add("tensors", s.tensors); j.add("bytes_saved", s.bytesSaved); j.endObject()
            return j.text
        }.joined(separator: ",") + "]")
        o.add("near_duplicates", raw: "[" + report.near.map { n in
            var j = JSONWriter()
            j.beginObject(); j.add("a", n.a.description); j.add("b", n.b.description); j.add("base", n.base)
            j.add("modules", n.modules); j.add("cosine", raw: "\(n.cosine)"); j.endObject()
            return j.text
        }.joined(separator: ",") + "]")
        o.add("compared", report.compared)
        o.add("not_compared", raw: "[" + report.notCompared.map { reference, why in
            var j = JSONWriter()
            j.beginObject(); j.add("ref", reference.description); j.add("why", why); j.endObject()
            return j.text
        }.joined(separator: ",") + "]")
        o.endObject()
        return o.text
    }

    /// One row per finding, in `list`'s layout.
    static func table(_ report: DuplicateReport) -> String {
        var rows: [[String]] = []
        for g in report.identicalFiles { rows.append(["identical-file", g.references.map(\.description).joined(separator: " "), "sha256 \(g.hash.prefix(12))…"]) }
        for g in report.identicalData {
            rows.append(["identical-data", g.references.map(\.description).joined(separator: " "), "AutoV3 \(g.hash.prefix(12).uppercased()) (metadata differs)"])
        }
        for s in report.sharing {
            rows.append(["shared-tensors", s.references.map(\.description).joined(separator: " "),
                         "\(s.tensors) tensor\(s.tensors == 1 ? "" : "s"), \(CatalogCLI.bytes(s.bytesSaved)) stored once"])
        }
        for n in report.near {
            rows.append(["near-duplicate", "\(n.a) \(n.b)", "cosine \(n.cosine) over \(n.modules) modules (\(n.base ?? "unknown base"))"])
        }
        if rows.isEmpty { return "" }
        return CatalogCLI.table([["TYPE", "REFS", "DETAIL"]] + rows)
    }
}

extension DupsCommand: HasExamples {}
