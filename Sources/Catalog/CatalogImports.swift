import GRDB

extension Catalog {
    /// The files imported on `host` under `folder`, by absolute path (entries removed since are gone
    /// from the cache with them).
    public func importCache(host: String, under folder: String) throws -> [String: ImportRecord] {
        let (low, high) = ImportCache.range(under: folder)
        return try store.read { db in
            var out: [String: ImportRecord] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT c.path, c.size, c.mtime_ns, c.inode, e.name, e.version FROM import_cache c JOIN entries e ON e.id = c.entry_id
                WHERE c.host = ? AND c.path >= ? AND c.path < ?
                """, arguments: [host, low, high]) {
                out[row[0]] = ImportRecord(stamp: FileStamp(size: row[1], mtimeNanoseconds: row[2], inode: row[3]),
                                           reference: Reference(name: row[4], version: row[5]))
            }
            return out
        }
    }

    /// Records that the file at `path` on `host`, as `stamp` says, is the entry `reference` (nothing when
    /// that entry was removed meanwhile).
    public func recordImport(host: String, path: String, stamp: FileStamp, reference: Reference) throws {
        try store.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM entries WHERE name = ? AND version = ?",
                                              arguments: [reference.name, reference.version]) else { return }
            try db.execute(sql: "INSERT OR REPLACE INTO import_cache (host, path, size, mtime_ns, inode, entry_id) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [host, path, stamp.size, stamp.mtimeNanoseconds, stamp.inode, id])
        }
    }

    /// Every use of a tensor that more than one entry uses.
    public func sharedTensorUses() throws -> [SharedTensorUse] {
        try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT DISTINCT t.blob, b.raw_size, e.name, e.version FROM entry_tensors t
                JOIN blobs b ON b.sha256 = t.blob JOIN entries e ON e.id = t.entry_id
                WHERE t.blob IN (SELECT blob FROM entry_tensors GROUP BY blob HAVING count(DISTINCT entry_id) > 1)
                ORDER BY t.blob, e.name, e.version
                """).map { SharedTensorUse(blob: $0[0], rawSize: $0[1], reference: Reference(name: $0[2], version: $0[3])) }
        }
    }
}
