import Foundation
import GRDB
import SafeTensors

extension Catalog {
    /// Stores `file` as the next version of `name`.
    ///
    /// Each tensor is hashed first, to know which are new. The write transaction then inserts the new
    /// blobs as worker threads compress them (the workers also hash the whole file and its data
    /// section when idle: compression, hashing and the database's writes overlap; a concurrent add
    /// waits for the transaction), then the entry, its header and its tensor list, and commits once.
    /// Identical bytes already stored make it return `.alreadyStored`. `beforeCommit` runs inside the
    /// transaction once everything is in place, just before the commit (the command uses it to hold
    /// signals until it has printed the new REF). `digests` taken from `file` beforehand spare the hashing.
    public func add(file: SafeTensorsFile, originalPath: String?, name: String, tags: [String] = [], note: String? = nil,
                    facts: EntryFacts = EntryFacts(), level: Int? = nil, digests: AddDigests? = nil,
                    beforeCommit: () -> Void = {}) throws -> AddOutcome {
        try Reference.validate(name: name)
        let level = level ?? Codec.defaultLevel
        let tensors = file.header.tensors

        // 1. Each tensor's hash, on every core (unless given). Every byte is read (reading the facts may
        //    have set the mapping up for scattered reads).
        let (blobHashes, fileHashes, hashTasks) = Catalog.digests(of: file, given: digests)

        // 2. Which tensors are new (first occurrence of each hash not yet stored).
        let existing = try store.read { db in try storedBlobs(db, Set(blobHashes)) }
        var seen = Set<String>()
        var fresh: [Int] = []
        for (i, hash) in blobHashes.enumerated() where !existing.contains(hash) && seen.insert(hash).inserted {
            fresh.append(i)
        }

        // 3. The whole file's and the data section's hashes. A file with a new tensor cannot be stored
        //    already: its hashes are then computed by the compression workers in their idle time.
        //    Otherwise they come first, and say whether the file is stored already.
        if fresh.isEmpty {
            DispatchQueue.concurrentPerform(iterations: hashTasks.count) { hashTasks[$0]() }
            if let same = try store.read({ db in try sameFile(db, fileHashes.file) }) { return .alreadyStored(same) }
        }

        // 4. One transaction: the new blobs (compressed by worker threads meanwhile), entry, header,
        //    tensor list, tags.
        let headerBytes = Array(file.headerBytes)
        let addedAt = Catalog.timestamp()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return try store.write { db -> AddOutcome in
            // A `gc` running since the check above may have removed tensors this entry shares.
            if try storedBlobs(db, existing).count != existing.count {
                throw CatalogError.io("\(file.path): tensors it shares were removed by a concurrent 'tlkit gc' meanwhile; nothing was added — run the add again")
            }
            // Another add may have stored some of the new tensors since step 2: they are shared now, and
            // how they were stored decides whether they may serve as references.
            let storedMeanwhile = try storedBlobs(db, Set(fresh.map { blobHashes[$0] }))
            let newTensors = fresh.filter { !storedMeanwhile.contains(blobHashes[$0]) }
            let freshSet = Set(newTensors)
            // References the new tensors may be encoded against (read inside the transaction: no gc meanwhile).
            let previous = try Catalog.plainTensorsOfLatestVersion(db, name: name)
            let twinHashes = DeltaReference.storedTwinHashes(tensors: tensors, hashes: blobHashes, fresh: newTensors)
            let candidates = DeltaReference.candidates(tensors: tensors, hashes: blobHashes, fresh: newTensors,
                                                       storedPlain: try Catalog.plainBlobs(db, twinHashes), previous: previous)
            let decoded = try Catalog.decodeBlobs(db, Set(candidates.values.joined().filter { $0.tensor == nil }.map(\.sha256)))
            let order = DeltaReference.insertionOrder(newTensors, candidates: candidates)
            let jobs = DeltaReference.jobs(order, tensors: tensors, file: file, candidates: candidates, decoded: decoded)
            var added = headerBytes.count
            var newBlobs = 0
            var storedSizes: [Int: Int] = [:]
            let writer = try BlobWriter(db)
            let pipeline = CompressionPipeline(jobs: jobs, level: level, cores: cores, then: fresh.isEmpty ? [] : hashTasks)
            try withExtendedLifetime(decoded) {
                try pipeline.forEachInOrder { k, codec, reference, stored in
                    let i = order[k]
                    storedSizes[i] = stored.count
                    if try writer.insert(sha256: blobHashes[i], codec: codec, rawSize: tensors[i].byteCount, stored: stored, reference: reference) {
                        added += stored.count
                        newBlobs += 1
                    }
                }
            }
            let fileHash = fileHashes.file, dataHash = fileHashes.data
            // Everything is read: a file truncated meanwhile had zeros read for its lost pages.
            try file.checkUnchanged()
            // Another process may have added the same bytes since step 2 (its blobs made ours no-ops).
            if let same = try sameFile(db, fileHash) { return .alreadyStored(same) }
            let version = (try Int.fetchOne(db, sql: "SELECT max(version) FROM entries WHERE name = ?", arguments: [name]) ?? 0) + 1
            // Stored size of the entry alone: every distinct tensor it uses, as stored, and the references
            // of those stored against a blob of another entry.
            var storedAlone = headerBytes.count
            var counted = Set<String>()
            for (i, hash) in blobHashes.enumerated() where counted.insert(hash).inserted {
                if freshSet.contains(i) { storedAlone += storedSizes[i]!; continue }
                storedAlone += try Int.fetchOne(db, sql: "SELECT stored_size FROM blobs WHERE sha256 = ?", arguments: [hash]) ?? 0
            }
            for reference in Set(try Catalog.blobReferences(db, counted).values) where counted.insert(reference).inserted {
                storedAlone += try Int.fetchOne(db, sql: "SELECT stored_size FROM blobs WHERE sha256 = ?", arguments: [reference]) ?? 0
            }
            try Catalog.insertEntry(db, EntryRows.insertValues(
                name: name, version: version, sha256: fileHash, dataHash: dataHash, size: file.header.fileLength, stored: storedAlone,
                added: added, tensorCount: tensors.count, facts: facts, note: note, source: originalPath, addedAt: addedAt))
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
            beforeCommit()
            return .added(Reference(name: name, version: version),
                          AddStatistics(tensors: tensors.count, newBlobs: newBlobs, sharedBlobs: distinct - newBlobs,
                                        size: file.header.fileLength, addedBytes: added))
        }
    }

    /// Inserts an entry's row (`EntryRows.insertValues`); its id is `db.lastInsertedRowID`.
    static func insertEntry(_ db: Database, _ values: [EntryRows.Value]) throws {
        let arguments: [(any DatabaseValueConvertible)?] = values.map { value in
            switch value {
            case let .text(text): return text
            case let .int(number): return number
            }
        }
        try db.execute(sql: EntryRows.insertStatement { _ in "?" }, arguments: StatementArguments(arguments))
    }

    /// Each tensor's SHA-256, on every core. Every byte is read (reading the facts may have set the
    /// mapping up for scattered reads).
    static func tensorHashes(_ file: SafeTensorsFile) -> [String] {
        let tensors = file.header.tensors
        file.adviseWholeRead()
        var blobHashes = [String](repeating: "", count: tensors.count)
        blobHashes.withUnsafeMutableBufferPointer { out in
            let out = UncheckedBox(out)
            DispatchQueue.concurrentPerform(iterations: tensors.count) { i in
                out.value[i] = Hashing.sha256(file.rawBytes(tensors[i]))
            }
        }
        return blobHashes
    }

    /// Two tasks that hash the whole file and its data section into `hashes`.
    static func fileHashTasks(_ file: SafeTensorsFile, into hashes: HashPair) -> [@Sendable () -> Void] {
        [
            {
                var whole = StreamHasher()
                whole.update(file.headerBytes)
                whole.update(file.dataSection)
                hashes.file = whole.finalize()
            },
            {
                var data = StreamHasher()
                data.update(file.dataSection)
                hashes.data = "0x" + data.finalize()
            },
        ]
    }

    /// Now as ISO 8601 UTC to the second (`2025-01-31T12:00:00Z`), without Foundation's formatter
    /// (whose first use loads time-zone data).
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var text = [CChar](repeating: 0, count: 32)
        let count = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: text[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func sameFile(_ db: Database, _ fileHash: String) throws -> Reference? {
        guard let row = try Row.fetchOne(db, sql: "SELECT name, version FROM entries WHERE sha256 = ? ORDER BY id LIMIT 1", arguments: [fileHash]) else { return nil }
        return Reference(name: row["name"], version: row["version"])
    }

    /// The tensors of `name`'s latest version stored without a reference: candidates for the next
    /// version's tensors of the same name (`DeltaReference`).
    static func plainTensorsOfLatestVersion(_ db: Database, name: String) throws -> [String: (sha256: String, rawSize: Int)] {
        var found: [String: (sha256: String, rawSize: Int)] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT t.name, t.blob, b.raw_size FROM entry_tensors t JOIN blobs b ON b.sha256 = t.blob
            WHERE t.entry_id = (SELECT id FROM entries WHERE name = ? ORDER BY version DESC LIMIT 1) AND b.reference IS NULL
            """, arguments: [name]) {
            found[row[0]] = (row[1], row[2])
        }
        return found
    }

    /// Those of `hashes` that are stored without a reference.
    static func plainBlobs(_ db: Database, _ hashes: Set<String>) throws -> Set<String> {
        var found = Set<String>()
        for hash in hashes where try Bool.fetchOne(db, sql: "SELECT reference IS NULL FROM blobs WHERE sha256 = ?", arguments: [hash]) == true {
            found.insert(hash)
        }
        return found
    }

    /// The raw bytes of the stored blobs `hashes` (each stored without a reference).
    static func decodeBlobs(_ db: Database, _ hashes: Set<String>) throws -> DecodedBlobs {
        let decoded = DecodedBlobs()
        guard !hashes.isEmpty else { return decoded }
        let reader = try BlobReader(db)
        for hash in hashes {
            guard let row = try Row.fetchOne(db, sql: "SELECT rowid, codec, raw_size FROM blobs WHERE sha256 = ? AND reference IS NULL",
                                             arguments: [hash]) else { continue }
            decoded.add(sha256: hash, codecName: row[1], rawSize: row[2], stored: try reader.read(rowID: row[0]))
        }
        return decoded
    }

    /// The references of those of `hashes` that are stored against one.
    static func blobReferences(_ db: Database, _ hashes: Set<String>) throws -> [String: String] {
        var found: [String: String] = [:]
        let all = Array(hashes)
        for start in stride(from: 0, to: all.count, by: 500) {
            let batch = Array(all[start..<min(all.count, start + 500)])
            let marks = Array(repeating: "?", count: batch.count).joined(separator: ",")
            for row in try Row.fetchAll(db, sql: "SELECT sha256, reference FROM blobs WHERE reference IS NOT NULL AND sha256 IN (\(marks))",
                                        arguments: StatementArguments(batch)) {
                found[row[0]] = row[1]
            }
        }
        return found
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
