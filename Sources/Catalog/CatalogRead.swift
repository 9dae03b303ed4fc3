import Foundation
import GRDB
import SafeTensors

extension Catalog {
    /// Every entry matching `filter`, ordered by name then version.
    public func list(filter: ListFilter = ListFilter()) throws -> [EntrySummary] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let tag = filter.tag { conditions.append("EXISTS (SELECT 1 FROM tags WHERE entry_id = e.id AND tag = ?)"); arguments.append(tag) }
        if let base = filter.base { conditions.append("(e.base = ? OR e.derivative = ?)"); arguments += [base, base] }
        if let method = filter.method { conditions.append("e.method = ?"); arguments.append(method) }
        if let glob = filter.nameGlob { conditions.append("e.name GLOB ?"); arguments.append(glob) }
        if let family = filter.family { conditions.append("e.family = ?"); arguments.append(family) }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try store.read { db in try Catalog.summaries(db, whereClause, StatementArguments(arguments)) }.filter(filter.admits)
    }

    /// The entry `reference` names, with its header, metadata and tensors.
    public func entry(_ reference: Reference) throws -> EntryDetail {
        try store.read { db in
            let (id, _) = try entryID(db, reference)
            let summary = try Catalog.summaries(db, "WHERE e.id = ?", [id])[0]
            let header = [UInt8](try Data.fetchOne(db, sql: "SELECT bytes FROM entry_headers WHERE entry_id = ?", arguments: [id]) ?? Data())
            let parsed = try Catalog.parseHeader(header, fileSize: summary.size, name: summary.reference.description)
            var stored: [String: (codec: String, size: Int)] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT b.sha256, b.codec, b.stored_size FROM entry_tensors t JOIN blobs b ON b.sha256 = t.blob WHERE t.entry_id = ?
                """, arguments: [id]) {
                stored[row[0]] = (row[1], row[2])
            }
            let blobs = try String.fetchAll(db, sql: "SELECT blob FROM entry_tensors WHERE entry_id = ? ORDER BY ordinal", arguments: [id])
            let tensors = zip(parsed.tensors, blobs).map { info, blob in
                StoredTensor(name: info.name, dtype: info.dtype.rawValue, shape: info.shape, size: info.byteCount, blob: blob,
                             codec: stored[blob]?.codec ?? "missing", stored: stored[blob]?.size ?? 0)
            }
            return EntryDetail(summary: summary, headerBytes: header, metadata: parsed.metadataEntries, tensors: tensors)
        }
    }

    /// Writes the original file of `reference` to `output`, tensor by tensor, and checks that the
    /// rebuilt bytes hash to the stored SHA-256. Each tensor is checked against its content address
    /// before any of its bytes are written, so standard output, which cannot be taken back, never gets
    /// a damaged tensor: the stream stops before it. The caller commits `output` (or abandons it on error).
    public func write(_ reference: Reference, to output: AtomicOutput) throws {
        try store.read { db in
            let (id, version) = try entryID(db, reference)
            let name = Reference(name: reference.name, version: version)
            let expected = try String.fetchOne(db, sql: "SELECT sha256 FROM entries WHERE id = ?", arguments: [id])!
            let result = try Rebuild.run(db, entryID: id, checkBlobs: true, stopAtFirstProblem: true) { try output.write($0) }
            if let problem = result.problems.first {
                throw CatalogError.corrupt("\(name): the catalog entry is damaged: \(problem); output stopped before it (run 'tlkit verify')")
            }
            if result.fileHash != expected {
                throw CatalogError.corrupt("\(name): the rebuilt file hashes to \(result.fileHash.prefix(12))…, not the stored \(expected.prefix(12))… (run 'tlkit verify')")
            }
        }
    }

    /// The entry's original file, rebuilt in memory and checked against its SHA-256, for commands that
    /// take an adapter argument resolved to a catalog reference (`AdapterSource.catalog`).
    public func file(_ reference: Reference) throws -> SafeTensorsFile {
        var bytes: [UInt8] = []
        let resolved: Reference = try store.read { db in
            let (id, version) = try entryID(db, reference)
            let expected = try String.fetchOne(db, sql: "SELECT sha256 FROM entries WHERE id = ?", arguments: [id])!
            let result = try Rebuild.run(db, entryID: id, checkBlobs: true, stopAtFirstProblem: true) { bytes.append(contentsOf: $0) }
            let name = Reference(name: reference.name, version: version)
            if let problem = result.problems.first { throw CatalogError.corrupt("\(name): the catalog entry is damaged: \(problem) (run 'tlkit verify')") }
            if result.fileHash != expected { throw CatalogError.corrupt("\(name): the rebuilt file does not match its SHA-256 (run 'tlkit verify')") }
            return name
        }
        return try SafeTensorsFile.parse(bytes: bytes, name: "catalog:\(resolved)")
    }

    static func parseHeader(_ bytes: [UInt8], fileSize: Int, name: String) throws -> Header {
        do {
            let length = try Header.headerLength(prefix: Array(bytes.prefix(8)), fileSize: fileSize, file: name)
            guard bytes.count == 8 + length else { throw CatalogError.corrupt("\(name): the stored header is \(bytes.count) bytes, its length field says \(8 + length)") }
            return try Header.parse(json: Array(bytes[8...]), fileSize: fileSize, file: name)
        } catch let error as SafeTensorsError {
            throw CatalogError.corrupt("\(name): the stored header is damaged: \(error)")
        }
    }

    /// The entries `whereClause` selects (it may use `e.` columns), ordered by name and version, read
    /// column by column from SQLite: `list` of a large catalog spends its time here.
    static func summaries(_ db: Database, _ whereClause: String, _ arguments: StatementArguments) throws -> [EntrySummary] {
        let rows = try RawRows(db, sql: EntryRows.query(whereClause), arguments: arguments)
        return try EntryRows.summaries { try rows.next() ? rows : nil }
    }
}
