import Foundation
import GRDB
import SafeTensors

extension Catalog {
    /// Stores `file` as the next version of `name`.
    ///
    /// Hashing and compression happen before the write transaction (so concurrent adds wait only for
    /// each other's inserts); the transaction then inserts the new blobs, the entry, its header and its
    /// tensor list, and commits once. Identical bytes already stored make it return `.alreadyStored`.
    public func add(file: SafeTensorsFile, originalPath: String?, name: String, tags: [String] = [], note: String? = nil,
                    facts: EntryFacts = EntryFacts(), level: Int? = nil) throws -> AddOutcome {
        try Reference.validate(name: name)
        let level = level ?? Codec.defaultLevel
        let tensors = file.header.tensors

        // 1. Hashes: the whole file and the data section as two tasks, then each tensor, on every core.
        var blobHashes = [String](repeating: "", count: tensors.count)
        let fileHashes = HashPair()
        blobHashes.withUnsafeMutableBufferPointer { out in
            let out = UncheckedBox(out)
            DispatchQueue.concurrentPerform(iterations: tensors.count + 2) { i in
                switch i {
                case 0:
                    var whole = StreamHasher()
                    whole.update(file.headerBytes)
                    whole.update(file.dataSection)
                    fileHashes.file = whole.finalize()
                case 1:
                    var data = StreamHasher()
                    data.update(file.dataSection)
                    fileHashes.data = "0x" + data.finalize()
                default:
                    out.value[i - 2] = Hashing.sha256(file.rawBytes(tensors[i - 2]))
                }
            }
        }
        let fileHash = fileHashes.file, dataHash = fileHashes.data

        // 2. Which tensors are new (first occurrence of each hash not yet stored).
        let existing: Set<String>
        if let same = try store.read({ db in try sameFile(db, fileHash) }) { return .alreadyStored(same) }
        existing = try store.read { db in try storedBlobs(db, Set(blobHashes)) }
        var seen = Set<String>()
        var fresh: [Int] = []
        for (i, hash) in blobHashes.enumerated() where !existing.contains(hash) && seen.insert(hash).inserted {
            fresh.append(i)
        }

        // 3. Compress the new ones: big tensors one at a time with zstd's own threads, small ones side by side.
        let spool = Spool(folder: FileSystem.folder(of: path))
        var codecs = [Codec](repeating: .raw, count: tensors.count)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let big = fresh.filter { Codec.usesThreads(byteCount: tensors[$0].byteCount, dtype: tensors[$0].dtype) }
        let small = fresh.filter { !Codec.usesThreads(byteCount: tensors[$0].byteCount, dtype: tensors[$0].dtype) }
        for i in big {
            let (codec, bytes) = try Codec.encode(file.rawBytes(tensors[i]), dtype: tensors[i].dtype, level: level, workers: cores > 1 ? cores : 0)
            codecs[i] = codec
            try spool.put(i, bytes)
        }
        let failure = FirstError()
        codecs.withUnsafeMutableBufferPointer { out in
            let out = UncheckedBox(out)
            DispatchQueue.concurrentPerform(iterations: small.count) { k in
                let i = small[k]
                do {
                    let (codec, bytes) = try Codec.encode(file.rawBytes(tensors[i]), dtype: tensors[i].dtype, level: level, workers: 0)
                    out.value[i] = codec
                    try spool.put(i, bytes)
                } catch { failure.record(error) }
            }
        }
        try failure.rethrow()

        // 4. One transaction: blobs, entry, header, tensor list, tags.
        let headerBytes = Array(file.headerBytes)
        let addedAt = ISO8601DateFormatter().string(from: Date())
        let freshSet = Set(fresh)
        return try store.write { db -> AddOutcome in
            if let same = try sameFile(db, fileHash) { return .alreadyStored(same) }
            // A `gc` running since the check above may have removed tensors this entry shares.
            if try storedBlobs(db, existing).count != existing.count {
                throw CatalogError.io("\(file.path): tensors it shares were removed by a concurrent 'tlkit gc' meanwhile; nothing was added — run the add again")
            }
            let version = (try Int.fetchOne(db, sql: "SELECT max(version) FROM entries WHERE name = ?", arguments: [name]) ?? 0) + 1
            var added = headerBytes.count
            var newBlobs = 0
            var storedSizes: [Int: Int] = [:]
            for i in fresh {
                let bytes = try spool.read(i)
                storedSizes[i] = bytes.count
                try db.execute(sql: "INSERT OR IGNORE INTO blobs (sha256, codec, raw_size, stored_size, data) VALUES (?, ?, ?, ?, ?)",
                               arguments: [blobHashes[i], codecs[i].name, tensors[i].byteCount, bytes.count, Data(bytes)])
                if db.changesCount > 0 { added += bytes.count; newBlobs += 1 }
            }
            // Stored size of the entry alone: every distinct tensor it uses, as stored.
            var storedAlone = headerBytes.count
            var counted = Set<String>()
            for (i, hash) in blobHashes.enumerated() where counted.insert(hash).inserted {
                if freshSet.contains(i) { storedAlone += storedSizes[i]!; continue }
                storedAlone += try Int.fetchOne(db, sql: "SELECT stored_size FROM blobs WHERE sha256 = ?", arguments: [hash]) ?? 0
            }
            try db.execute(sql: """
                INSERT INTO entries (name, version, sha256, data_hash, size, stored, added_bytes, tensor_count,
                    kind, format, base, method, rank, min_rank, trigger, token, class, steps, note, source, added_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [name, version, fileHash, dataHash, file.header.fileLength, storedAlone, added, tensors.count,
                                 facts.kind, facts.format, facts.base, facts.method, facts.rank, facts.minRank,
                                 facts.trigger, facts.token, facts.className, facts.steps, note, originalPath, addedAt])
            let id = db.lastInsertedRowID
            try db.execute(sql: "INSERT INTO entry_headers (entry_id, bytes) VALUES (?, ?)", arguments: [id, Data(headerBytes)])
            let insert = try db.makeStatement(sql: "INSERT INTO entry_tensors (entry_id, ordinal, name, blob) VALUES (?, ?, ?, ?)")
            for (i, info) in tensors.enumerated() {
                try insert.execute(arguments: [id, i, info.name, blobHashes[i]])
            }
            for tag in Set(tags) {
                try db.execute(sql: "INSERT OR IGNORE INTO tags (entry_id, tag) VALUES (?, ?)", arguments: [id, tag])
            }
            let distinct = Set(blobHashes).count
            return .added(Reference(name: name, version: version),
                          AddStatistics(tensors: tensors.count, newBlobs: newBlobs, sharedBlobs: distinct - newBlobs,
                                        size: file.header.fileLength, addedBytes: added))
        }
    }

    private func sameFile(_ db: Database, _ fileHash: String) throws -> Reference? {
        guard let row = try Row.fetchOne(db, sql: "SELECT name, version FROM entries WHERE sha256 = ? ORDER BY id LIMIT 1", arguments: [fileHash]) else { return nil }
        return Reference(name: row["name"], version: row["version"])
    }

    private func storedBlobs(_ db: Database, _ hashes: Set<String>) throws -> Set<String> {
        var found = Set<String>()
        let all = Array(hashes)
        for start in stride(from: 0, to: all.count, by: 500) {
            let batch = Array(all[start..<min(all.count, start + 500)])
            let marks = Array(repeating: "?", count: batch.count).joined(separator: ",")
            found.formUnion(try String.fetchAll(db, sql: "SELECT sha256 FROM blobs WHERE sha256 IN (\(marks))", arguments: StatementArguments(batch)))
        }
        return found
    }
}

/// Lets worker closures write to distinct slots of one buffer.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The two whole-file digests, written by one worker and read after the join.
final class HashPair: @unchecked Sendable {
    var file = ""
    var data = ""
}

/// Remembers the first error thrown by parallel work.
final class FirstError: @unchecked Sendable {
    private var error: Error?
    private let lock = Lock()
    func record(_ error: Error) { lock.withLock { if self.error == nil { self.error = error } } }
    func rethrow() throws { if let error = lock.withLock({ self.error }) { throw error } }
}
