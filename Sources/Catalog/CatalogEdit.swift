import Foundation
import GRDB

extension Catalog {
    /// Removes the entry `reference` names (with `allVersions`, every version of the name) and returns
    /// what was removed. Tensors stay stored until `gc()`.
    @discardableResult
    public func remove(_ reference: Reference, allVersions: Bool = false) throws -> [Reference] {
        try store.write { db in
            let ids: [(Int64, Int)]
            if allVersions {
                ids = try Row.fetchAll(db, sql: "SELECT id, version FROM entries WHERE name = ? ORDER BY version", arguments: [reference.name])
                    .map { ($0["id"], $0["version"]) }
                if ids.isEmpty { _ = try entryID(db, Reference(name: reference.name)) }  // throws "no such entry"
            } else {
                ids = [try entryID(db, reference)]
            }
            for (id, _) in ids { try db.execute(sql: "DELETE FROM entries WHERE id = ?", arguments: [id]) }
            return ids.map { Reference(name: reference.name, version: $0.1) }
        }
    }

    /// Adds `tags` to the entry; returns the tags it now has.
    @discardableResult
    public func tag(_ reference: Reference, _ tags: [String]) throws -> [String] {
        try store.write { db in
            let (id, _) = try entryID(db, reference)
            for tag in tags {
                guard !tag.isEmpty else { throw CatalogError.invalidName(tag, why: "a tag cannot be empty") }
                try db.execute(sql: "INSERT OR IGNORE INTO tags (entry_id, tag) VALUES (?, ?)", arguments: [id, tag])
            }
            return try String.fetchAll(db, sql: "SELECT tag FROM tags WHERE entry_id = ? ORDER BY tag", arguments: [id])
        }
    }

    /// Removes `tags` from the entry (absent ones are ignored); returns the tags it still has.
    @discardableResult
    public func untag(_ reference: Reference, _ tags: [String]) throws -> [String] {
        try store.write { db in
            let (id, _) = try entryID(db, reference)
            for tag in tags { try db.execute(sql: "DELETE FROM tags WHERE entry_id = ? AND tag = ?", arguments: [id, tag]) }
            return try String.fetchAll(db, sql: "SELECT tag FROM tags WHERE entry_id = ? ORDER BY tag", arguments: [id])
        }
    }

    /// Deletes tensors no entry uses (one transaction), then compacts the file with VACUUM. A blob
    /// that another stored blob was encoded against stays while that blob stays: each round deletes
    /// the unused blobs nothing references, until a round finds none (two rounds at most, as
    /// references are one step deep).
    public func gc() throws -> GCStatistics {
        let before = fileSizeWithWAL()
        let (count, bytes) = try store.write { db -> (Int, Int) in
            var count = 0, bytes = 0, n = 0
            repeat {
                let row = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(stored_size), 0) FROM blobs b WHERE \(Catalog.unusedBlob)")!
                n = row[0]
                (count, bytes) = (count + n, bytes + row[1])
                try db.execute(sql: "DELETE FROM blobs AS b WHERE \(Catalog.unusedBlob)")
            } while n > 0
            return (count, bytes)
        }
        try store.writeWithoutTransaction { db in
            try db.execute(sql: "VACUUM")
            try db.checkpoint(.truncate)
        }
        return GCStatistics(blobsRemoved: count, storedBytesRemoved: bytes, fileSizeBefore: before, fileSizeAfter: fileSizeWithWAL())
    }

    /// The SQL condition (on `blobs b`) of a blob `gc` deletes: no entry uses it and no blob names it
    /// as its reference. The same on both backends.
    static let unusedBlob = """
        NOT EXISTS (SELECT 1 FROM entry_tensors t WHERE t.blob = b.sha256) AND NOT EXISTS (SELECT 1 FROM blobs d WHERE d.reference = b.sha256)
        """

    /// Bytes the catalog occupies on disk (database plus write-ahead log).
    public func fileSizeWithWAL() -> Int {
        (FileSystem.size(path) ?? 0) + (FileSystem.size(path + "-wal") ?? 0)
    }

    /// Totals over the whole catalog: entries, distinct tensors, raw and stored bytes.
    public func totals() throws -> (entries: Int, blobs: Int, originalBytes: Int, storedBytes: Int) {
        try store.read { db in
            let e = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(size), 0) FROM entries")!
            let b = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(stored_size), 0) FROM blobs")!
            let h = try Int.fetchOne(db, sql: "SELECT coalesce(sum(length(bytes)), 0) FROM entry_headers") ?? 0
            return (e[0], b[0], e[1], b[1] + h)
        }
    }
}
