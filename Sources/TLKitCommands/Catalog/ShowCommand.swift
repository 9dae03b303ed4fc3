import ArgumentParser
import Catalog
import Foundation
import JSONOutput

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one entry: facts, hashes (AutoV2, AutoV3, addnet, sshs_model_hash), tensors and metadata.")

    static let examples: [Example] = [
        ("The newest version of a name", "tlkit show sks-dog"),
        ("One version's metadata, as JSON", "tlkit show sks-dog@2 --json | jq .metadata"),
    ]

    @Argument(help: ArgumentHelp("NAME (latest) or NAME@VERSION.", valueName: "REF"))
    var ref: String

    @Flag(help: "Print one JSON document.")
    var json = false

    @OptionGroup var catalog: CatalogOption

    func validate() throws { _ = try CatalogCLI.reference(ref) }

    func run() throws {
        try CatalogCLI.run("show") {
            let detail = try catalog.open(create: false).entry(try Reference.parse(ref))
            let s = detail.summary
            let addnet = s.autoV3
            let autoV2 = s.autoV2
            // The file's own statement, also for entries added before the catalog recorded it.
            let sshs = s.facts.sshsModelHash ?? detail.metadata.first { $0.key == "sshs_model_hash" }?.value
            if json {
                var o = JSONWriter()
                o.beginObject()
                s.addJSON(to: &o, sshsModelHash: sshs)
                o.add("addnet", addnet)
                o.add("tensor_list", raw: "[" + detail.tensors.map { t in
                    var j = JSONWriter()
                    j.beginObject()
                    j.add("name", t.name); j.add("dtype", t.dtype)
                    j.add("shape", raw: "[" + t.shape.map(String.init).joined(separator: ",") + "]")
                    j.add("size", t.size); j.add("stored", t.stored); j.add("codec", t.codec); j.add("blob", t.blob)
                    j.endObject()
                    return j.text
                }.joined(separator: ",") + "]")
                o.add("metadata", raw: "{" + detail.metadata.map { "\(JSONWriter.quote($0.key)):\(JSONWriter.quote($0.value))" }.joined(separator: ",") + "}")
                o.endObject()
                Console.out(o.text)
                return
            }
            var lines: [String] = []
            func line(_ key: String, _ value: String?) { if let value { lines.append(key.padding(toLength: 12, withPad: " ", startingAt: 0) + value) } }
            line("ref", s.reference.description)
            line("kind", s.facts.kind); line("format", s.facts.format); line("base", s.facts.base); line("method", s.facts.method)
            line("rank", s.facts.rank.map(String.init)); line("min rank", s.facts.minRank.map(String.init))
            line("trigger", s.facts.trigger); line("token", s.facts.token); line("class", s.facts.className)
            line("steps", s.facts.steps.map(String.init))
            line("family", s.facts.family); line("derivative", s.facts.derivative)
            line("words", s.facts.triggerWords.flatMap { $0.isEmpty ? nil : $0.joined(separator: ", ") })
            line("tags", s.tags.isEmpty ? nil : s.tags.joined(separator: ", "))
            line("note", s.note)
            line("size", "\(s.size) bytes (\(CatalogCLI.bytes(s.size))); stored alone \(CatalogCLI.bytes(s.stored)), added \(CatalogCLI.bytes(s.added))")
            line("sha256", s.sha256)
            line("AutoV2", autoV2)
            line("AutoV3", "\(addnet.prefix(12).uppercased()) (SHA-256 of the data after the header: \(addnet))")
            line("sshs hash", sshs.map { "\($0) (" + ($0.lowercased() == addnet ? "matches the data" : "does not match the data: edited or stale") + ")" })
            line("addnet", "\(addnet) (sshs_model_hash; short \(addnet.prefix(12)))")
            line("data hash", "\(s.dataHash) (modelspec.hash_sha256)")
            line("added", s.addedAt)
            line("source", s.source)
            lines.append("tensors (\(detail.tensors.count)):")
            for t in detail.tensors {
                lines.append("  \(t.name)  \(t.dtype) [\(t.shape.map(String.init).joined(separator: ", "))]  \(t.codec) \(t.size) → \(t.stored)")
            }
            lines.append("metadata (\(detail.metadata.count)):")
            for (key, value) in detail.metadata {
                let shown = value.count > 200 ? String(value.prefix(200)) + "… (\(value.count) characters)" : value
                lines.append("  \(key) = \(shown)")
            }
            Console.out(lines.joined(separator: "\n"))
        }
    }
}
