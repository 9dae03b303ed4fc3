import PostgresNIO

extension PostgresCatalog {
    @discardableResult
    public func remove(_ reference: Reference, allVersions: Bool) throws -> [Reference] {
        try session.transaction {
            let ids: [(Int64, Int)]
            if allVersions {
                ids = try session.query("SELECT id, version FROM entries WHERE name = $1 ORDER BY version FOR UPDATE", [reference.name])
                    .map { try $0.decode((Int64, Int).self) }
                if ids.isEmpty { _ = try entryID(Reference(name: reference.name)) }  // throws "no such entry"
            } else {
                ids = [try entryID(reference)]
            }
            for (id, _) in ids { try session.query("DELETE FROM entries WHERE id = $1", [id]) }
            return ids.map { Reference(name: reference.name, version: $0.1) }
        }
    }

    @discardableResult
    public func tag(_ reference: Reference, _ tags: [String]) throws -> [String] {
        try session.transaction {
            let (id, _) = try entryID(reference)
            for tag in tags {
                guard !tag.isEmpty else { throw CatalogError.invalidName(tag, why: "a tag cannot be empty") }
                try session.query("INSERT INTO tags (entry_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING", [id, tag])
            }
            return try tagsOf(id)
        }
    }

    @discardableResult
    public func untag(_ reference: Reference, _ tags: [String]) throws -> [String] {
        try session.transaction {
            let (id, _) = try entryID(reference)
            for tag in tags { try session.query("DELETE FROM tags WHERE entry_id = $1 AND tag = $2", [id, tag]) }
            return try tagsOf(id)
        }
    }

    private func tagsOf(_ id: Int64) throws -> [String] {
        try session.query("SELECT tag FROM tags WHERE entry_id = $1 ORDER BY tag", [id]).map { try $0.decode(String.self) }
    }

    /// Deletes tensors no entry uses, holding the gc lock exclusively: it waits for the adds in progress
    /// (each holds it shared) and they wait for it, so no add can reference a tensor being deleted.
    /// Then VACUUM lets the server reuse the space (it keeps the files' size).
    public func gc() throws -> GCStatistics {
        let before = try storageBytes()
        let (count, bytes) = try session.transaction { () -> (Int, Int) in
            try session.query("SELECT pg_advisory_xact_lock($1)", [PostgresSchema.gcLockKey])
            // Rounds as in `Catalog.gc`: a referenced blob goes once the blobs naming it are gone.
            // The DELETE runs even when nothing is unused: a role that may not delete is told so.
            var count = 0, bytes = 0, n = 0
            repeat {
                let size: Int
                (n, size) = try session.query("SELECT count(*)::bigint, coalesce(sum(stored_size), 0)::bigint FROM blobs b WHERE \(Catalog.unusedBlob)")[0]
                    .decode((Int, Int).self)
                (count, bytes) = (count + n, bytes + size)
                try session.query("DELETE FROM blobs AS b WHERE \(Catalog.unusedBlob)")
            } while n > 0
            return (count, bytes)
        }
        try session.query("VACUUM blob_chunks, blobs")
        return GCStatistics(blobsRemoved: count, storedBytesRemoved: bytes, fileSizeBefore: before, fileSizeAfter: try storageBytes())
    }

    /// Bytes the catalog's tables and indexes occupy on the server.
    func storageBytes() throws -> Int {
        try session.query("""
            SELECT coalesce(sum(pg_total_relation_size(c)), 0)::bigint
            FROM unnest(ARRAY['blobs', 'blob_chunks', 'entries', 'entry_headers', 'entry_tensors', 'tags', 'import_cache', 'tlkit_schema']::regclass[]) AS c
            """)[0].decode(Int.self)
    }

    public func totals() throws -> (entries: Int, blobs: Int, originalBytes: Int, storedBytes: Int) {
        try read {
            let (entries, original) = try session.query("SELECT count(*)::bigint, coalesce(sum(size), 0)::bigint FROM entries")[0].decode((Int, Int).self)
            let (blobs, stored) = try session.query("SELECT count(*)::bigint, coalesce(sum(stored_size), 0)::bigint FROM blobs")[0].decode((Int, Int).self)
            let headers = try session.query("SELECT coalesce(sum(length(bytes)), 0)::bigint FROM entry_headers")[0].decode(Int.self)
            return (entries, blobs, original, stored + headers)
        }
    }
}
