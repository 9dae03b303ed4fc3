import Foundation
import PostgresNIO
import SafeTensors

extension PostgresCatalog {
    /// Stores `file` as the next version of `name`, as `Catalog.add` does, in one transaction on the
    /// server (a writer killed or cut off at any point leaves nothing: the server rolls it back).
    ///
    /// Concurrency: the transaction holds the gc lock shared (see `gc`), re-checks that the tensors it
    /// shares still exist, inserts its new tensors in hash order (two adds storing the same new tensors
    /// wait for each other instead of deadlocking; the second finds them stored), and takes a lock on
    /// the name before reading the latest version, so concurrent adds of one name get consecutive versions.
    public func add(file: SafeTensorsFile, originalPath: String?, name: String, tags: [String], note: String?,
                    facts: EntryFacts, level: Int?, beforeCommit: () -> Void) throws -> AddOutcome {
        try Reference.validate(name: name)
        let level = level ?? Codec.defaultLevel
        let tensors = file.header.tensors

        // 1. Each tensor's hash; 2. which are new (first occurrence of each hash not yet stored).
        let blobHashes = Catalog.tensorHashes(file)
        let existing = try storedSizes(Set(blobHashes))
        var seen = Set<String>()
        var fresh: [Int] = []
        for (i, hash) in blobHashes.enumerated() where existing[hash] == nil && seen.insert(hash).inserted {
            fresh.append(i)
        }
        fresh.sort { blobHashes[$0] < blobHashes[$1] }

        // 3. The file's hashes: computed by the compression workers when there are new tensors, else
        //    first, to tell whether the file is stored already.
        let fileHashes = HashPair()
        let hashTasks = Catalog.fileHashTasks(file, into: fileHashes)
        if fresh.isEmpty {
            DispatchQueue.concurrentPerform(iterations: hashTasks.count) { hashTasks[$0]() }
            if let same = try sameFile(fileHashes.file) { return .alreadyStored(same) }
        }

        // 4. One transaction: new blobs (compressed meanwhile), entry, header, tensor list, tags.
        let headerBytes = Array(file.headerBytes)
        let addedAt = Catalog.timestamp()
        let jobs = fresh.map { CompressionPipeline.Job(bytes: file.rawBytes(tensors[$0]), dtype: tensors[$0].dtype) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return try session.transaction { () -> AddOutcome in
            try session.query("SELECT pg_advisory_xact_lock_shared($1)", [PostgresSchema.gcLockKey])
            // A `gc` that ran since the check above may have removed tensors this entry shares.
            if try storedSizes(Set(existing.keys)).count != existing.count {
                throw CatalogError.io("\(file.path): tensors it shares were removed by a concurrent 'tlkit gc' meanwhile; nothing was added — run the add again")
            }
            var added = headerBytes.count
            var newBlobs = 0
            var sizes = existing
            let pipeline = CompressionPipeline(jobs: jobs, level: level, cores: cores, then: fresh.isEmpty ? [] : hashTasks)
            try pipeline.forEachInOrder { k, codec, stored in
                let i = fresh[k]
                if try insertBlob(sha256: blobHashes[i], codec: codec, rawSize: tensors[i].byteCount, stored: stored) {
                    added += stored.count
                    newBlobs += 1
                    sizes[blobHashes[i]] = stored.count
                } else {
                    // Another writer stored it meanwhile: count it as stored there.
                    sizes[blobHashes[i]] = try storedSizes([blobHashes[i]])[blobHashes[i]] ?? stored.count
                }
            }
            let fileHash = fileHashes.file, dataHash = fileHashes.data
            // Everything is read: a file truncated meanwhile had zeros read for its lost pages.
            try file.checkUnchanged()
            try session.query("SELECT pg_advisory_xact_lock($1)", [PostgresCatalog.lockKey(name: name)])
            // Another process may have added the same bytes since step 2 (its blobs made ours no-ops).
            if let same = try sameFile(fileHash) { return .alreadyStored(same) }
            let version = (try latestVersion(of: name) ?? 0) + 1
            // Stored size of the entry alone: every distinct tensor it uses, as stored.
            var storedAlone = headerBytes.count
            for hash in Set(blobHashes) { storedAlone += sizes[hash] ?? 0 }
            let id = try insertEntry(EntryRows.insertValues(
                name: name, version: version, sha256: fileHash, dataHash: dataHash, size: file.header.fileLength, stored: storedAlone,
                added: added, tensorCount: tensors.count, facts: facts, note: note, source: originalPath, addedAt: addedAt))
            try session.query("INSERT INTO entry_headers (entry_id, bytes) VALUES ($1, $2)", [id, ByteBuffer(bytes: headerBytes)])
            try session.query("""
                INSERT INTO entry_tensors (entry_id, ordinal, name, blob)
                SELECT $1, u.ordinal, u.name, u.blob FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(ordinal, name, blob)
                """, [id, Array(tensors.indices), tensors.map(\.name), blobHashes])
            for tag in Set(tags) {
                try session.query("INSERT INTO tags (entry_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING", [id, tag])
            }
            let distinct = Set(blobHashes).count
            beforeCommit()
            return .added(Reference(name: name, version: version),
                          AddStatistics(tensors: tensors.count, newBlobs: newBlobs, sharedBlobs: distinct - newBlobs,
                                        size: file.header.fileLength, addedBytes: added))
        }
    }

    /// Inserts an entry's row (`EntryRows.insertValues`) and returns its id.
    func insertEntry(_ values: [EntryRows.Value]) throws -> Int64 {
        let binds: [(any PostgresThrowingDynamicTypeEncodable)?] = values.map { value in
            switch value {
            case let .text(text): return text
            case let .int(number): return number
            }
        }
        return try session.query(EntryRows.insertStatement { "$\($0)" } + " RETURNING id", binds)[0].decode(Int64.self)
    }

    /// Stores one blob in chunks; false when a blob with this hash is already there (a concurrent
    /// writer's insert of the same hash makes this wait for its commit).
    func insertBlob(sha256: String, codec: Codec, rawSize: Int, stored: UnsafeRawBufferPointer) throws -> Bool {
        let rows = try session.query("""
            INSERT INTO blobs (sha256, codec, raw_size, stored_size) VALUES ($1, $2, $3, $4)
            ON CONFLICT (sha256) DO NOTHING RETURNING id
            """, [sha256, codec.name, rawSize, stored.count])
        guard let row = rows.first else { return false }
        let id = try row.decode(Int64.self)
        var seq = 0
        for start in stride(from: 0, to: stored.count, by: PostgresSchema.chunkBytes) {
            let chunk = UnsafeRawBufferPointer(rebasing: stored[start..<min(stored.count, start + PostgresSchema.chunkBytes)])
            try session.query("INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)", [id, seq, ByteBuffer(bytes: chunk)])
            seq += 1
        }
        return true
    }

    /// The stored sizes of those of `hashes` that are stored.
    func storedSizes(_ hashes: Set<String>) throws -> [String: Int] {
        var found: [String: Int] = [:]
        for row in try session.query("SELECT sha256, stored_size FROM blobs WHERE sha256 = ANY($1)", [Array(hashes)]) {
            let (sha, size) = try row.decode((String, Int).self)
            found[sha] = size
        }
        return found
    }

    private func sameFile(_ fileHash: String) throws -> Reference? {
        guard let row = try session.query("SELECT name, version FROM entries WHERE sha256 = $1 ORDER BY id LIMIT 1", [fileHash]).first else { return nil }
        let (name, version) = try row.decode((String, Int).self)
        return Reference(name: name, version: version)
    }

    /// The advisory lock key of a name: the first 8 bytes of a SHA-256 of it.
    static func lockKey(name: String) -> Int64 {
        let digest = Array("tlkit name lock\0\(name)".utf8).withUnsafeBytes { Hashing.sha256($0) }
        return Int64(bitPattern: UInt64(digest.prefix(16), radix: 16)!)
    }
}
