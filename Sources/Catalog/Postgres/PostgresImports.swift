import PostgresNIO

extension PostgresCatalog {
    public func importCache(host: String, under folder: String) throws -> [String: ImportRecord] {
        let (low, high) = ImportCache.range(under: folder)
        return try read {
            var out: [String: ImportRecord] = [:]
            for row in try session.query("""
                SELECT c.path, c.size, c.mtime_ns, c.inode, e.name, e.version FROM import_cache c JOIN entries e ON e.id = c.entry_id
                WHERE c.host = $1 AND c.path >= $2 AND c.path < $3
                """, [host, low, high]) {
                let (path, size, mtime, inode, name, version) = try row.decode((String, Int, Int, Int, String, Int).self)
                out[path] = ImportRecord(stamp: FileStamp(size: size, mtimeNanoseconds: mtime, inode: inode),
                                         reference: Reference(name: name, version: version))
            }
            return out
        }
    }

    public func recordImport(host: String, path: String, stamp: FileStamp, reference: Reference) throws {
        try session.query("""
            INSERT INTO import_cache (host, path, size, mtime_ns, inode, entry_id)
            SELECT $1, $2, $3, $4, $5, id FROM entries WHERE name = $6 AND version = $7
            ON CONFLICT (host, path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode,
                entry_id = excluded.entry_id
            """, [host, path, stamp.size, stamp.mtimeNanoseconds, stamp.inode, reference.name, reference.version ?? 0])
    }

    public func sharedTensorUses() throws -> [SharedTensorUse] {
        try read {
            try session.query("""
                SELECT DISTINCT t.blob, b.raw_size, e.name, e.version FROM entry_tensors t
                JOIN blobs b ON b.sha256 = t.blob JOIN entries e ON e.id = t.entry_id
                WHERE t.blob IN (SELECT blob FROM entry_tensors GROUP BY blob HAVING count(DISTINCT entry_id) > 1)
                ORDER BY t.blob, e.name, e.version
                """).map { row in
                let (blob, size, name, version) = try row.decode((String, Int, String, Int).self)
                return SharedTensorUse(blob: blob, rawSize: size, reference: Reference(name: name, version: version))
            }
        }
    }
}
