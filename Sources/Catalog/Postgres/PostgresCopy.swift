import Foundation
import PostgresNIO

extension PostgresCatalog {
    /// One read-only snapshot of the server's catalog: the source of a copy.
    public func readSnapshot<T>(_ body: (any CatalogSnapshot) throws -> T) throws -> T {
        try read { try body(PostgresSnapshot(catalog: self)) }
    }

    /// One transaction that receives a copy. It holds the gc lock shared, as an add does (see `gc`), so
    /// no `gc` deletes a tensor the copy found stored before the copy commits.
    public func receive<T>(_ body: (any CatalogReceiver) throws -> T) throws -> T {
        try session.transaction {
            try session.query("SELECT pg_advisory_xact_lock_shared($1)", [PostgresSchema.gcLockKey])
            return try body(PostgresReceiver(catalog: self))
        }
    }
}

/// The entries and blobs of a server's catalog, read inside one snapshot.
private final class PostgresSnapshot: CatalogSnapshot {
    let catalog: PostgresCatalog
    let buffer = ReusableBuffer()
    var session: PostgresSession { catalog.session }

    init(catalog: PostgresCatalog) { self.catalog = catalog }

    func records(_ reference: Reference, allVersions: Bool) throws -> [TransferEntry] {
        var ids: [Int64] = []
        if allVersions {
            ids = try session.query("SELECT id FROM entries WHERE name = $1 ORDER BY version", [reference.name]).map { try $0.decode(Int64.self) }
        }
        if ids.isEmpty { ids = [try catalog.entryID(allVersions ? Reference(name: reference.name) : reference).id] }
        return try ids.map { id in
            let summary = try catalog.summaries("WHERE e.id = $1", [id])[0]
            let header = try session.query("SELECT bytes FROM entry_headers WHERE entry_id = $1", [id]).first
                .map { Array(try $0.decode(ByteBuffer.self).readableBytesView) } ?? []
            let tensors = try session.query("SELECT name, blob FROM entry_tensors WHERE entry_id = $1 ORDER BY ordinal", [id])
                .map { try $0.decode((String, String).self) }
            return TransferEntry(summary: summary, header: header, tensorNames: tensors.map(\.0), blobs: tensors.map(\.1))
        }
    }

    func blob(_ sha256: String) throws -> StoredBlob {
        guard let row = try session.query("SELECT id, codec, raw_size, reference FROM blobs WHERE sha256 = $1", [sha256]).first else {
            throw CatalogError.corrupt("\(catalog.location): the stored tensor \(sha256.prefix(12))… is missing; nothing was copied (run 'tlkit verify')")
        }
        let (id, codec, rawSize, reference) = try row.decode((Int64, String, Int, String?).self)
        return StoredBlob(codec: codec, rawSize: rawSize, bytes: try catalog.blobBytes(id, into: buffer), reference: reference)
    }

    func blobReferences(_ hashes: Set<String>) throws -> [String: String] { try catalog.blobReferences(hashes) }
}

/// Receives a copy into a server's catalog inside its transaction.
private struct PostgresReceiver: CatalogReceiver {
    let catalog: PostgresCatalog
    var session: PostgresSession { catalog.session }

    func storedSizes(_ hashes: Set<String>) throws -> [String: Int] { try catalog.storedSizes(hashes) }

    func insertBlob(sha256: String, codec: Codec, rawSize: Int, stored: UnsafeRawBufferPointer, reference: String?) throws -> Bool {
        try catalog.insertBlob(sha256: sha256, codec: codec, rawSize: rawSize, stored: stored, reference: reference)
    }

    func blobReferences(_ hashes: Set<String>) throws -> [String: String] { try catalog.blobReferences(hashes) }

    /// The names' advisory locks, which adds take too before they read a name's latest version.
    func lockNames(_ names: [String]) throws {
        for name in names { try session.query("SELECT pg_advisory_xact_lock($1)", [PostgresCatalog.lockKey(name: name)]) }
    }

    func fileHash(name: String, version: Int) throws -> String? {
        try session.query("SELECT sha256 FROM entries WHERE name = $1 AND version = $2", [name, version]).first?.decode(String.self)
    }

    func insertEntry(_ record: TransferEntry, stored: Int, added: Int) throws {
        let s = record.summary, facts = s.facts
        let id = try catalog.insertEntry(EntryRows.insertValues(
            name: s.name, version: s.version, sha256: s.sha256, dataHash: s.dataHash, size: s.size, stored: stored, added: added,
            tensorCount: s.tensorCount, facts: facts, note: s.note, source: s.source, addedAt: s.addedAt))
        try session.query("INSERT INTO entry_headers (entry_id, bytes) VALUES ($1, $2)", [id, ByteBuffer(bytes: record.header)])
        try session.query("""
            INSERT INTO entry_tensors (entry_id, ordinal, name, blob)
            SELECT $1, u.ordinal, u.name, u.blob FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(ordinal, name, blob)
            """, [id, Array(record.blobs.indices), record.tensorNames, record.blobs])
        for tag in s.tags {
            try session.query("INSERT INTO tags (entry_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING", [id, tag])
        }
    }

    func addTags(name: String, version: Int, _ tags: [String]) throws -> [String] {
        guard let id = try session.query("SELECT id FROM entries WHERE name = $1 AND version = $2", [name, version]).first?
            .decode(Int64.self) else { return [] }
        var added: [String] = []
        for tag in tags {
            let inserted = try session.query("INSERT INTO tags (entry_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING tag", [id, tag])
            if !inserted.isEmpty { added.append(tag) }
        }
        return added
    }
}
