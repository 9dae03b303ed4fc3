import Foundation
import PostgresNIO
import SafeTensors

extension PostgresCatalog {
    public func list(filter: ListFilter) throws -> [EntrySummary] {
        var conditions: [String] = []
        var values: [(any PostgresThrowingDynamicTypeEncodable)?] = []
        func bind(_ value: String) -> String { values.append(value); return "$\(values.count)" }
        if let tag = filter.tag { conditions.append("EXISTS (SELECT 1 FROM tags WHERE entry_id = e.id AND tag = \(bind(tag)))") }
        if let base = filter.base { conditions.append("(e.base = \(bind(base)) OR e.derivative = \(bind(base)))") }
        if let method = filter.method { conditions.append("e.method = \(bind(method))") }
        if let glob = filter.nameGlob { conditions.append("e.name ~ \(bind(GlobPattern.regex(glob)))") }
        if let family = filter.family { conditions.append("e.family = \(bind(family))") }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read { try summaries(whereClause, values) }.filter(filter.admits)
    }

    public func entry(_ reference: Reference) throws -> EntryDetail {
        try read {
            let (id, _) = try entryID(reference)
            let summary = try summaries("WHERE e.id = $1", [id])[0]
            let header = try session.query("SELECT bytes FROM entry_headers WHERE entry_id = $1", [id]).first
                .map { Array(try $0.decode(ByteBuffer.self).readableBytesView) } ?? []
            let parsed = try Catalog.parseHeader(header, fileSize: summary.size, name: summary.reference.description)
            var stored: [String: (codec: String, size: Int)] = [:]
            for row in try session.query("""
                SELECT b.sha256, b.codec, b.stored_size FROM entry_tensors t JOIN blobs b ON b.sha256 = t.blob WHERE t.entry_id = $1
                """, [id]) {
                let (sha, codec, size) = try row.decode((String, String, Int).self)
                stored[sha] = (codec, size)
            }
            let blobs = try session.query("SELECT blob FROM entry_tensors WHERE entry_id = $1 ORDER BY ordinal", [id])
                .map { try $0.decode(String.self) }
            let tensors = zip(parsed.tensors, blobs).map { info, blob in
                StoredTensor(name: info.name, dtype: info.dtype.rawValue, shape: info.shape, size: info.byteCount, blob: blob,
                             codec: stored[blob]?.codec ?? "missing", stored: stored[blob]?.size ?? 0)
            }
            return EntryDetail(summary: summary, headerBytes: header, metadata: parsed.metadataEntries, tensors: tensors)
        }
    }

    public func write(_ reference: Reference, to output: AtomicOutput) throws {
        try read {
            let (id, version) = try entryID(reference)
            let name = Reference(name: reference.name, version: version)
            let expected = try session.query("SELECT sha256 FROM entries WHERE id = $1", [id])[0].decode(String.self)
            let result = try rebuild(entryID: id, checkBlobs: true, stopAtFirstProblem: true) { try output.write($0) }
            if let problem = result.problems.first {
                throw CatalogError.corrupt("\(name): the catalog entry is damaged: \(problem); output stopped before it (run 'tlkit verify')")
            }
            if result.fileHash != expected {
                throw CatalogError.corrupt("\(name): the rebuilt file hashes to \(result.fileHash.prefix(12))…, not the stored \(expected.prefix(12))… (run 'tlkit verify')")
            }
        }
    }

    public func file(_ reference: Reference) throws -> SafeTensorsFile {
        let collected = ByteCollector()
        let resolved: Reference = try read {
            let (id, version) = try entryID(reference)
            let expected = try session.query("SELECT sha256 FROM entries WHERE id = $1", [id])[0].decode(String.self)
            let result = try rebuild(entryID: id, checkBlobs: true, stopAtFirstProblem: true) { collected.bytes.append(contentsOf: $0) }
            let name = Reference(name: reference.name, version: version)
            if let problem = result.problems.first { throw CatalogError.corrupt("\(name): the catalog entry is damaged: \(problem) (run 'tlkit verify')") }
            if result.fileHash != expected { throw CatalogError.corrupt("\(name): the rebuilt file does not match its SHA-256 (run 'tlkit verify')") }
            return name
        }
        return try SafeTensorsFile.parse(bytes: collected.bytes, name: "catalog:\(resolved)")
    }

    /// The entries `whereClause` selects (it may use `e.` columns), ordered by name and version, with
    /// their tags in order (one row per entry and tag).
    func summaries(_ whereClause: String, _ values: [(any PostgresThrowingDynamicTypeEncodable)?]) throws -> [EntrySummary] {
        var rows = try session.query(EntryRows.query(whereClause), values).makeIterator()
        return try EntryRows.summaries { rows.next().map { PostgresEntryColumns(cells: $0.makeRandomAccess()) } }
    }
}

/// A PostgreSQL row of `EntryRows.query`.
private struct PostgresEntryColumns: EntryColumns {
    let cells: PostgresRandomAccessRow

    func text(at column: Int) throws -> String? { try cells[column].decode(String?.self) }
    func int(at column: Int) throws -> Int? { try cells[column].decode(Int?.self) }
}

/// The bytes `file(_:)` gathers from the rebuild's writer thread.
private final class ByteCollector: @unchecked Sendable {
    var bytes: [UInt8] = []
}

/// SQLite's GLOB (`*`, `?`, `[…]`, `[^…]`, case-sensitive, whole name) as a PostgreSQL regular expression.
enum GlobPattern {
    static func regex(_ glob: String) -> String {
        var out = "^"
        var characters = Array(glob)[...]
        while let c = characters.popFirst() {
            switch c {
            case "*": out += ".*"
            case "?": out += "."
            case "[":
                // A set runs to the first ']' after its first member; without one, '[' is literal.
                var set = Array(characters)
                var start = 0
                var negated = false
                if set.first == "^" { negated = true; start = 1 }
                guard let close = set.indices.first(where: { $0 > start && set[$0] == "]" }) else {
                    out += "\\["
                    continue
                }
                let members = set[start..<close]
                out += negated ? "[^" : "["
                for m in members { out += (m == "\\" || m == "[") ? "\\" + String(m) : String(m) }
                out += "]"
                set.removeFirst(close + 1)
                characters = set[...]
            default:
                out += "^$.|?*+()[]{}\\".contains(c) ? "\\" + String(c) : String(c)
            }
        }
        return out + "$"
    }
}
