#if canImport(Glibc)
import Glibc
#endif

/// Copies entries from one catalog to another, of either backend (`tlkit push` and `tlkit pull`).
///
/// What a copied REF becomes: `NAME@VERSION` keeps its name and version number in the destination,
/// with its header, tensors, facts, note, source, time of adding and tags. An entry the destination
/// already has under that name and version with the same bytes (SHA-256 of the file) is left as it is;
/// only the source's tags it lacks are added. The same name and version holding other bytes there is a
/// conflict: nothing at all is copied (a version never changes once stored). Versions missing on either
/// side are no obstacle: a copied version may leave a gap, as `rm` may.
///
/// Only tensors the destination lacks are sent (by content hash), as the source stored them — the
/// same codec names on both backends, so nothing is recompressed — each decoded and checked against
/// its hash first, so a damaged source never spreads. A tensor stored against a reference blob brings
/// that blob along when the destination lacks it. The destination receives everything in one
/// transaction: all entries land, or none.
public enum CatalogTransfer {
    /// Copies the entries `references` name (`NAME` is the latest version; with `allVersions`, every
    /// version of the name) from `source` to `destination`.
    public static func copy(_ references: [Reference], allVersions: Bool, from source: any CatalogStore,
                            to destination: any CatalogStore) throws -> CopyResult {
        if CatalogStores.same(source, destination) {
            throw CatalogError.io("\(source.location): the source and the destination are the same catalog; nothing to copy")
        }
        return try source.readSnapshot { snapshot in
            var records: [TransferEntry] = []
            var seen = Set<Reference>()
            for reference in references {
                for record in try snapshot.records(reference, allVersions: allVersions) where seen.insert(record.summary.reference).inserted {
                    records.append(record)
                }
            }
            return try destination.receive { receiver in
                try Receiving(records: records, snapshot: snapshot, receiver: receiver, destination: destination.location).run()
            }
        }
    }
}

/// One copy's work inside the destination's transaction.
private struct Receiving {
    let records: [TransferEntry]
    let snapshot: any CatalogSnapshot
    let receiver: any CatalogReceiver
    let destination: String

    func run() throws -> CopyResult {
        // Refuse a conflict before sending anything; look again once the names are locked.
        var present = try alreadyThere()
        var sizes: [String: Int] = [:]
        var sent: [String: Int] = [:]
        try send(records.filter { !present.contains($0.summary.reference) }, sizes: &sizes, sent: &sent)
        // Blobs before names, as an add takes them on a server, so the two never wait for each other in a circle.
        try receiver.lockNames(Set(records.map(\.summary.name)).sorted())
        present = try alreadyThere()
        // An entry thought present may have been removed meanwhile: its tensors may be gone too.
        try send(records.filter { !present.contains($0.summary.reference) }, sizes: &sizes, sent: &sent)

        var items: [CopyResult.Item] = []
        var counted = Set<String>()
        for record in records {
            let s = record.summary
            if present.contains(s.reference) {
                let added = try receiver.addTags(name: s.name, version: s.version, s.tags)
                items.append(CopyResult.Item(reference: s.reference, status: .present, sha256: s.sha256, tagsAdded: added))
                continue
            }
            // As an add counts them: stored alone is every distinct tensor as stored here; added is
            // what this copy stored for the entry first.
            var stored = record.header.count, added = record.header.count
            let distinct = Set(record.blobs)
            for hash in distinct {
                stored += sizes[hash] ?? 0
                if let bytes = sent[hash], counted.insert(hash).inserted { added += bytes }
            }
            // References outside the entry are part of what it needs, as an add counts them.
            let outside = Set(try receiver.blobReferences(distinct).values).subtracting(distinct)
            for (hash, size) in try receiver.storedSizes(outside) {
                stored += size
                if let bytes = sent[hash], counted.insert(hash).inserted { added += bytes }
            }
            try receiver.insertEntry(record, stored: stored, added: added)
            items.append(CopyResult.Item(reference: s.reference, status: .copied, sha256: s.sha256, tagsAdded: s.tags))
        }
        let wanted = Set(records.filter { !present.contains($0.summary.reference) }.flatMap(\.blobs))
        return CopyResult(items: items, tensorsSent: sent.count, storedBytesSent: sent.values.reduce(0, +),
                          tensorsPresent: max(0, wanted.count - sent.count))
    }

    /// The records the destination holds already with the same bytes; throws for one it holds with others.
    private func alreadyThere() throws -> Set<Reference> {
        var present = Set<Reference>()
        for record in records {
            let s = record.summary
            guard let there = try receiver.fileHash(name: s.name, version: s.version) else { continue }
            guard there == s.sha256 else {
                throw CatalogError.conflict("\(s.reference): the catalog \(destination) already has \(s.reference) with other bytes (sha256 \(there.prefix(12))…, the copy's \(s.sha256.prefix(12))…); a stored version never changes, so nothing was copied — copy it under another name with 'tlkit get \(s.reference) -o - | tlkit add - --name NEW --catalog …'")
            }
            present.insert(s.reference)
        }
        return present
    }

    /// Stores the tensors of `records` the destination lacks, in hash order (writers on a server then
    /// wait for each other in one order); records each tensor's stored size in `sizes` and, for those
    /// this copy stored, in `sent`. A tensor stored against a reference travels with its reference
    /// (sent first, unless the destination has it); where the destination's copy of the reference has
    /// a reference of its own, the tensor is stored there plainly instead (chains stay one step deep).
    private func send(_ records: [TransferEntry], sizes: inout [String: Int], sent: inout [String: Int]) throws {
        let needed = Set(records.flatMap(\.blobs)).subtracting(sizes.keys)
        if needed.isEmpty { return }
        let there = try receiver.storedSizes(needed)
        sizes.merge(there) { $1 }
        let missing = needed.subtracting(there.keys)
        let references = try snapshot.blobReferences(missing)
        let extra = Set(references.values).subtracting(needed)
        let extraThere = try receiver.storedSizes(extra)
        sizes.merge(extraThere) { $1 }
        let chainedThere = try receiver.blobReferences(Set(references.values).intersection(Set(there.keys).union(extraThere.keys)))
        // References first (stored plainly), then the tensors stored against them.
        let plain = missing.union(extra.subtracting(extraThere.keys)).filter { references[$0] == nil }.sorted()
        let delta = missing.filter { references[$0] != nil }.sorted()
        let scratch = ReusableBuffer(), decoded = ReusableBuffer(), referenceBytes = ReusableBuffer(), recoded = ReusableBuffer()
        for hash in plain + delta {
            var reference = references[hash]
            var referenceRaw: UnsafeRawBufferPointer?
            if let name = reference {
                let blob = try snapshot.blob(name)
                referenceRaw = UnsafeRawBufferPointer(try Receiving.check(blob, hash: name, reference: nil, scratch: scratch, into: referenceBytes).raw)
            }
            let blob = try snapshot.blob(hash)
            var codec: Codec, raw: UnsafeMutableRawBufferPointer
            (codec, raw) = try Receiving.check(blob, hash: hash, reference: referenceRaw, scratch: scratch, into: decoded)
            var stored = blob.bytes
            if let name = reference, chainedThere[name] != nil, case let .xorShuffleZstd(width) = codec {
                let size: Int
                (codec, size) = try Codec.encode(UnsafeRawBufferPointer(raw), as: .shuffleZstd(width: width), reference: nil, level: Codec.defaultLevel,
                                                 workers: 0, into: recoded, scratch: scratch)
                (reference, stored) = (nil, UnsafeRawBufferPointer(recoded.prefix(size)))
            }
            if try receiver.insertBlob(sha256: hash, codec: codec, rawSize: blob.rawSize, stored: stored, reference: reference) {
                sent[hash] = stored.count
                sizes[hash] = stored.count
            } else {
                // Another writer stored it meanwhile: count it as stored there.
                sizes[hash] = try receiver.storedSizes([hash])[hash] ?? stored.count
            }
        }
    }

    /// Decodes a source blob (against the raw bytes of its reference, if it has one) into `buffer` and
    /// checks it against its address before it is sent; returns its codec and raw bytes.
    static func check(_ blob: StoredBlob, hash: String, reference: UnsafeRawBufferPointer?, scratch: ReusableBuffer,
                      into buffer: ReusableBuffer) throws -> (codec: Codec, raw: UnsafeMutableRawBufferPointer) {
        var raw = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        do {
            if blob.reference != nil && reference == nil { throw CatalogError.corrupt("it names a reference blob that cannot be used") }
            try Codec.decode(codecName: blob.codec, rawSize: blob.rawSize, stored: blob.bytes, reference: reference, scratch: scratch) { count in
                raw = buffer.prefix(count)
                return raw
            }
        } catch {
            throw CatalogError.corrupt("the stored tensor \(hash.prefix(12))… of the source catalog cannot be decoded (\(error)); nothing was copied (run 'tlkit verify' on the source)")
        }
        let actual = Hashing.sha256(UnsafeRawBufferPointer(raw))
        guard actual == hash else {
            throw CatalogError.corrupt("the stored tensor \(hash.prefix(12))… of the source catalog is damaged (its bytes hash to \(actual.prefix(12))…); nothing was copied (run 'tlkit verify' on the source)")
        }
        return (try Codec(name: blob.codec), raw)
    }
}

/// An entry as it travels between catalogs: its row, original header, tensors in data order and tags.
public struct TransferEntry: Sendable {
    public let summary: EntrySummary
    /// The original header bytes (8-byte length prefix and JSON).
    let header: [UInt8]
    let tensorNames: [String]
    /// Each tensor's blob (SHA-256 of its raw bytes), in data order.
    let blobs: [String]
}

/// A blob as a catalog stores it; `bytes` are valid until the snapshot's next `blob` call.
public struct StoredBlob {
    let codec: String
    let rawSize: Int
    let bytes: UnsafeRawBufferPointer
    /// The blob it is stored against (`Codec.xorShuffleZstd`), if any.
    let reference: String?
}

/// The reading side of a copy: one consistent state of the source catalog.
public protocol CatalogSnapshot {
    /// The entry `reference` names (with `allVersions`, every version of its name, oldest first).
    func records(_ reference: Reference, allVersions: Bool) throws -> [TransferEntry]
    /// The stored blob with this content hash.
    func blob(_ sha256: String) throws -> StoredBlob
    /// The references of those of `hashes` that are stored against one.
    func blobReferences(_ hashes: Set<String>) throws -> [String: String]
}

/// The receiving side of a copy: calls made inside the destination's one write transaction.
public protocol CatalogReceiver {
    /// The stored sizes of those of `hashes` that are stored here.
    func storedSizes(_ hashes: Set<String>) throws -> [String: Int]
    /// Stores one blob as given (with the blob it is stored against); false when one with this hash is
    /// already there (nothing is written).
    func insertBlob(sha256: String, codec: Codec, rawSize: Int, stored: UnsafeRawBufferPointer, reference: String?) throws -> Bool
    /// The references of those of `hashes` that are stored here against one.
    func blobReferences(_ hashes: Set<String>) throws -> [String: String]
    /// Keeps other writers from adding versions of `names` until the transaction ends (sorted names).
    func lockNames(_ names: [String]) throws
    /// The SHA-256 of the file stored as `name`@`version`, nil when there is none.
    func fileHash(name: String, version: Int) throws -> String?
    /// Stores the entry under its own name and version, with its tags; its tensors must be stored.
    func insertEntry(_ record: TransferEntry, stored: Int, added: Int) throws
    /// Adds those of `tags` that `name`@`version` lacks; returns them.
    func addTags(name: String, version: Int, _ tags: [String]) throws -> [String]
}

/// What a copy did.
public struct CopyResult: Sendable {
    public enum Status: String, Sendable {
        /// Stored in the destination by this copy.
        case copied
        /// The destination had the same bytes under this REF already.
        case present
    }

    public struct Item: Sendable {
        public let reference: Reference
        public let status: Status
        public let sha256: String
        /// Tags this copy gave the entry in the destination.
        public let tagsAdded: [String]
    }

    /// Every entry copied or found present, in the order asked for.
    public let items: [Item]
    /// Distinct tensors sent to (stored in) the destination.
    public let tensorsSent: Int
    /// Their stored (compressed) bytes.
    public let storedBytesSent: Int
    /// Distinct tensors of the copied entries the destination had already.
    public let tensorsPresent: Int
}

extension CatalogStores {
    /// Whether two open catalogs are one: the same file (whatever the path's spelling) or the same
    /// database on the same server (whichever role connected).
    static func same(_ a: any CatalogStore, _ b: any CatalogStore) -> Bool {
        if let a = a as? Catalog, let b = b as? Catalog {
            guard let x = realpath(a.path, nil), let y = realpath(b.path, nil) else { return a.path == b.path }
            defer { free(x); free(y) }
            return strcmp(x, y) == 0
        }
        if let a = a as? PostgresCatalog, let b = b as? PostgresCatalog {
            let x = a.session.location, y = b.session.location
            return x.host == y.host && x.port == y.port && x.database == y.database
        }
        return false
    }
}
