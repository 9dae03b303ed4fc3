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
                    facts: EntryFacts, level: Int?, digests: AddDigests?, beforeCommit: () -> Void) throws -> AddOutcome {
        try Reference.validate(name: name)
        let level = level ?? Codec.defaultLevel
        let tensors = file.header.tensors

        // 1. Each tensor's hash; 2. which are new (first occurrence of each hash not yet stored).
        let (blobHashes, fileHashes, hashTasks) = Catalog.digests(of: file, given: digests)
        let existing = try storedSizes(Set(blobHashes))
        var seen = Set<String>()
        var fresh: [Int] = []
        for (i, hash) in blobHashes.enumerated() where existing[hash] == nil && seen.insert(hash).inserted {
            fresh.append(i)
        }
        fresh.sort { blobHashes[$0] < blobHashes[$1] }

        // 3. The file's hashes: computed by the compression workers when there are new tensors, else
        //    first, to tell whether the file is stored already (both given: nothing to compute).
        if fresh.isEmpty {
            DispatchQueue.concurrentPerform(iterations: hashTasks.count) { hashTasks[$0]() }
            if let same = try sameFile(fileHashes.file) { return .alreadyStored(same) }
        }

        // 4. One transaction: new blobs (compressed meanwhile), entry, header, tensor list, tags.
        let headerBytes = Array(file.headerBytes)
        let addedAt = Catalog.timestamp()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return try session.transaction { () -> AddOutcome in
            try session.query("SELECT pg_advisory_xact_lock_shared($1)", [PostgresSchema.gcLockKey])
            // A `gc` that ran since the check above may have removed tensors this entry shares.
            if try storedSizes(Set(existing.keys)).count != existing.count {
                throw CatalogError.io("\(file.path): tensors it shares were removed by a concurrent 'tlkit gc' meanwhile; nothing was added — run the add again")
            }
            // References the new tensors may be encoded against (read under the gc lock: none is removed meanwhile).
            let previous = try plainTensorsOfLatestVersion(name: name)
            let twinHashes = DeltaReference.storedTwinHashes(tensors: tensors, hashes: blobHashes, fresh: fresh)
            let candidates = DeltaReference.candidates(tensors: tensors, hashes: blobHashes, fresh: fresh,
                                                       storedPlain: try plainBlobs(twinHashes), previous: previous)
            let decoded = try decodeBlobs(Set(candidates.values.joined().filter { $0.tensor == nil }.map(\.sha256)))
            // Each group in hash order: writers storing the same new tensors wait for each other in one order.
            let order = DeltaReference.insertionOrder(fresh, candidates: candidates) { blobHashes[$0] < blobHashes[$1] }
            let jobs = DeltaReference.jobs(order, tensors: tensors, file: file, candidates: candidates, decoded: decoded)
            var added = headerBytes.count
            var newBlobs = 0
            var sizes = existing
            // New references another writer stored meanwhile with a reference of their own: a blob
            // encoded against one of them is stored plainly instead (chains stay one step deep).
            var unusable = Set<String>()
            let pipeline = CompressionPipeline(jobs: jobs, level: level, cores: cores, then: fresh.isEmpty ? [] : hashTasks)
            try withExtendedLifetime(decoded) {
                try pipeline.forEachInOrder { k, codec, reference, stored in
                    let i = order[k]
                    var (codec, reference, stored) = (codec, reference, stored)
                    let plain = ReusableBuffer()
                    if let chosen = reference, unusable.contains(chosen) {
                        let size: Int
                        (codec, size) = try Codec.encode(file.rawBytes(tensors[i]), dtype: tensors[i].dtype, level: level, workers: 0,
                                                         into: plain, scratch: ReusableBuffer())
                        (reference, stored) = (nil, UnsafeRawBufferPointer(plain.prefix(size)))
                    }
                    try withExtendedLifetime(plain) {
                        if try insertBlob(sha256: blobHashes[i], codec: codec, rawSize: tensors[i].byteCount, stored: stored, reference: reference) {
                            added += stored.count
                            newBlobs += 1
                            sizes[blobHashes[i]] = stored.count
                        } else {
                            // Another writer stored it meanwhile: count it as stored there.
                            sizes[blobHashes[i]] = try storedSizes([blobHashes[i]])[blobHashes[i]] ?? stored.count
                            if try !plainBlobs([blobHashes[i]]).contains(blobHashes[i]) { unusable.insert(blobHashes[i]) }
                        }
                    }
                }
            }
            let fileHash = fileHashes.file, dataHash = fileHashes.data
            // Everything is read: a file truncated meanwhile had zeros read for its lost pages.
            try file.checkUnchanged()
            try session.query("SELECT pg_advisory_xact_lock($1)", [PostgresCatalog.lockKey(name: name)])
            // Another process may have added the same bytes since step 2 (its blobs made ours no-ops).
            if let same = try sameFile(fileHash) { return .alreadyStored(same) }
            let version = (try latestVersion(of: name) ?? 0) + 1
            // Stored size of the entry alone: every distinct tensor it uses, as stored, and the references
            // of those stored against a blob of another entry.
            var storedAlone = headerBytes.count
            let distinctBlobs = Set(blobHashes)
            for hash in distinctBlobs { storedAlone += sizes[hash] ?? 0 }
            let outside = Set(try blobReferences(distinctBlobs).values).subtracting(distinctBlobs)
            for size in try storedSizes(outside).values { storedAlone += size }
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

    /// Stores one blob in chunks (`reference`: the blob it was encoded against); false when a blob
    /// with this hash is already there (a concurrent writer's insert of the same hash makes this wait
    /// for its commit).
    func insertBlob(sha256: String, codec: Codec, rawSize: Int, stored: UnsafeRawBufferPointer, reference: String?) throws -> Bool {
        let rows = try session.query("""
            INSERT INTO blobs (sha256, codec, raw_size, stored_size, reference) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (sha256) DO NOTHING RETURNING id
            """, [sha256, codec.name, rawSize, stored.count, reference])
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

    /// The tensors of `name`'s latest version stored without a reference (see `Catalog.plainTensorsOfLatestVersion`).
    func plainTensorsOfLatestVersion(name: String) throws -> [String: (sha256: String, rawSize: Int)] {
        var found: [String: (sha256: String, rawSize: Int)] = [:]
        for row in try session.query("""
            SELECT t.name, t.blob, b.raw_size FROM entry_tensors t JOIN blobs b ON b.sha256 = t.blob
            WHERE t.entry_id = (SELECT id FROM entries WHERE name = $1 ORDER BY version DESC LIMIT 1) AND b.reference IS NULL
            """, [name]) {
            let (tensor, sha, size) = try row.decode((String, String, Int).self)
            found[tensor] = (sha, size)
        }
        return found
    }

    /// Those of `hashes` that are stored without a reference.
    func plainBlobs(_ hashes: Set<String>) throws -> Set<String> {
        guard !hashes.isEmpty else { return [] }
        return Set(try session.query("SELECT sha256 FROM blobs WHERE sha256 = ANY($1) AND reference IS NULL", [Array(hashes)])
            .map { try $0.decode(String.self) })
    }

    /// The references of those of `hashes` that are stored with one.
    func blobReferences(_ hashes: Set<String>) throws -> [String: String] {
        guard !hashes.isEmpty else { return [:] }
        var found: [String: String] = [:]
        for row in try session.query("SELECT sha256, reference FROM blobs WHERE sha256 = ANY($1) AND reference IS NOT NULL", [Array(hashes)]) {
            let (sha, reference) = try row.decode((String, String).self)
            found[sha] = reference
        }
        return found
    }

    /// The raw bytes of the stored blobs `hashes` (each stored without a reference).
    func decodeBlobs(_ hashes: Set<String>) throws -> DecodedBlobs {
        let decoded = DecodedBlobs()
        guard !hashes.isEmpty else { return decoded }
        let buffer = ReusableBuffer()
        for row in try session.query("SELECT sha256, id, codec, raw_size FROM blobs WHERE sha256 = ANY($1) AND reference IS NULL", [Array(hashes)]) {
            let (sha, id, codec, rawSize) = try row.decode((String, Int64, String, Int).self)
            decoded.add(sha256: sha, codecName: codec, rawSize: rawSize, stored: try blobBytes(id, into: buffer))
        }
        return decoded
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
