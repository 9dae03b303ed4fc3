import Foundation
import GRDB

extension Catalog {
    /// One read transaction of the file: the source of a copy.
    public func readSnapshot<T>(_ body: (any CatalogSnapshot) throws -> T) throws -> T {
        try store.read { db in try body(try SQLiteSnapshot(catalog: self, db: db)) }
    }

    /// One immediate write transaction of the file: no other writer runs until it commits.
    public func receive<T>(_ body: (any CatalogReceiver) throws -> T) throws -> T {
        try store.write { db in try body(try SQLiteReceiver(db: db)) }
    }
}

/// The entries and blobs of a SQLite catalog, read inside one transaction.
private final class SQLiteSnapshot: CatalogSnapshot {
    let catalog: Catalog
    let db: Database
    let reader: BlobReader

    init(catalog: Catalog, db: Database) throws {
        self.catalog = catalog
        self.db = db
        reader = try BlobReader(db)
    }

    func records(_ reference: Reference, allVersions: Bool) throws -> [TransferEntry] {
        var ids: [Int64] = []
        if allVersions {
            ids = try Int64.fetchAll(db, sql: "SELECT id FROM entries WHERE name = ? ORDER BY version", arguments: [reference.name])
        }
        if ids.isEmpty { ids = [try catalog.entryID(db, allVersions ? Reference(name: reference.name) : reference).id] }
        return try ids.map { id in
            let summary = try Catalog.summaries(db, "WHERE e.id = ?", [id])[0]
            let header = [UInt8](try Data.fetchOne(db, sql: "SELECT bytes FROM entry_headers WHERE entry_id = ?", arguments: [id]) ?? Data())
            let rows = try Row.fetchAll(db, sql: "SELECT name, blob FROM entry_tensors WHERE entry_id = ? ORDER BY ordinal", arguments: [id])
            return TransferEntry(summary: summary, header: header, tensorNames: rows.map { $0[0] }, blobs: rows.map { $0[1] })
        }
    }

    func blob(_ sha256: String) throws -> StoredBlob {
        guard let row = try Row.fetchOne(db, sql: "SELECT rowid, codec, raw_size, reference FROM blobs WHERE sha256 = ?", arguments: [sha256]) else {
            throw CatalogError.corrupt("\(catalog.path): the stored tensor \(sha256.prefix(12))… is missing; nothing was copied (run 'tlkit verify')")
        }
        return StoredBlob(codec: row[1], rawSize: row[2], bytes: try reader.read(rowID: row[0]), reference: row[3])
    }

    func blobReferences(_ hashes: Set<String>) throws -> [String: String] { try Catalog.blobReferences(db, hashes) }
}

/// Receives a copy into a SQLite catalog inside its write transaction.
private struct SQLiteReceiver: CatalogReceiver {
    let db: Database
    let writer: BlobWriter

    init(db: Database) throws {
        self.db = db
        writer = try BlobWriter(db)
    }

    func storedSizes(_ hashes: Set<String>) throws -> [String: Int] {
        var found: [String: Int] = [:]
        let all = Array(hashes)
        for start in stride(from: 0, to: all.count, by: 500) {
            let batch = Array(all[start..<min(all.count, start + 500)])
            let marks = Array(repeating: "?", count: batch.count).joined(separator: ",")
            for row in try Row.fetchAll(db, sql: "SELECT sha256, stored_size FROM blobs WHERE sha256 IN (\(marks))", arguments: StatementArguments(batch)) {
                found[row[0]] = row[1]
            }
        }
        return found
    }

    func insertBlob(sha256: String, codec: Codec, rawSize: Int, stored: UnsafeRawBufferPointer, reference: String?) throws -> Bool {
        try writer.insert(sha256: sha256, codec: codec, rawSize: rawSize, stored: stored, reference: reference)
    }

    func blobReferences(_ hashes: Set<String>) throws -> [String: String] { try Catalog.blobReferences(db, hashes) }

    /// Nothing to do: the write transaction already keeps every other writer out.
    func lockNames(_ names: [String]) throws {}

    func fileHash(name: String, version: Int) throws -> String? {
        try String.fetchOne(db, sql: "SELECT sha256 FROM entries WHERE name = ? AND version = ?", arguments: [name, version])
    }

    func insertEntry(_ record: TransferEntry, stored: Int, added: Int) throws {
        let s = record.summary, facts = s.facts
        try Catalog.insertEntry(db, EntryRows.insertValues(
            name: s.name, version: s.version, sha256: s.sha256, dataHash: s.dataHash, size: s.size, stored: stored, added: added,
            tensorCount: s.tensorCount, facts: facts, note: s.note, source: s.source, addedAt: s.addedAt))
        let id = db.lastInsertedRowID
        try db.execute(sql: "INSERT INTO entry_headers (entry_id, bytes) VALUES (?, ?)", arguments: [id, Data(record.header)])
        let insert = try db.makeStatement(sql: "INSERT INTO entry_tensors (entry_id, ordinal, name, blob) VALUES (?, ?, ?, ?)")
        for (i, (name, blob)) in zip(record.tensorNames, record.blobs).enumerated() {
            try insert.execute(arguments: [id, i, name, blob])
        }
        for tag in s.tags { try db.execute(sql: "INSERT OR IGNORE INTO tags (entry_id, tag) VALUES (?, ?)", arguments: [id, tag]) }
    }

    func addTags(name: String, version: Int, _ tags: [String]) throws -> [String] {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM entries WHERE name = ? AND version = ?", arguments: [name, version]) else { return [] }
        var added: [String] = []
        for tag in tags {
            try db.execute(sql: "INSERT OR IGNORE INTO tags (entry_id, tag) VALUES (?, ?)", arguments: [id, tag])
            if db.changesCount > 0 { added.append(tag) }
        }
        return added
    }
}
