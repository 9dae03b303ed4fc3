import Foundation
import GRDB
import SafeTensors

/// Streams an entry's original bytes — stored header, then each tensor decoded in data order — into a
/// sink, hashing as it goes. Reading and decoding run on the calling (database) thread while hashing
/// and writing the previous bytes run on a second thread.
///
/// Decoded tensors are gathered into chunks of about `chunkBytes` (a large tensor is a chunk of its
/// own) and the two threads pass a few reused chunk buffers back and forth: a LoRA's hundreds of small
/// tensors then cost a handful of hand-overs and writes instead of one each, memory stays bounded, and
/// no fresh pages are touched once the buffers have grown.
struct Rebuild {
    struct Result {
        var fileHash = ""
        var dataHash = ""
        var problems: [String] = []
    }

    /// One tensor of the entry and, when its blob exists, how it is stored (`rowID` is the backend's
    /// number for the blob).
    struct Part {
        let name: String
        let blob: String
        let codec: String?
        let rawSize: Int?
        let rowID: Int64?
        /// The blob it was encoded against, if any, as `blobs` describes it (nil fields: missing row).
        var reference: ReferencePart? = nil
    }

    /// A part's reference blob; `chained` when it names a reference of its own (never written).
    struct ReferencePart {
        let blob: String
        let codec: String?
        let rawSize: Int?
        let rowID: Int64?
        let chained: Bool
    }

    /// `checkBlobs` also re-hashes each tensor against its content address and `hashData` the data
    /// section on its own (what `verify` does); otherwise only the whole file is hashed. With
    /// `stopAtFirstProblem` (what `get` and readers use) each tensor is checked before any of its bytes
    /// reach the sink, and the stream ends before the first tensor that is damaged or missing.
    static func run(_ db: Database, entryID: Int64, checkBlobs: Bool, hashData: Bool = false, stopAtFirstProblem: Bool = false,
                    sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws -> Result {
        let header = try Data.fetchOne(db, sql: "SELECT bytes FROM entry_headers WHERE entry_id = ?", arguments: [entryID])
        var parts: [Part] = []
        let rows = try RawRows(db, sql: """
            SELECT t.name, t.blob, b.codec, b.raw_size, b.rowid, b.reference, r.codec, r.raw_size, r.rowid, r.reference IS NOT NULL
            FROM entry_tensors t LEFT JOIN blobs b ON b.sha256 = t.blob LEFT JOIN blobs r ON r.sha256 = b.reference
            WHERE t.entry_id = ? ORDER BY t.ordinal
            """, arguments: [entryID])
        while try rows.next() {
            let reference = rows.optionalText(5).map {
                ReferencePart(blob: $0, codec: rows.optionalText(6), rawSize: rows.optionalInt(7), rowID: rows.isNull(8) ? nil : rows.int64(8),
                              chained: rows.int(9) != 0)
            }
            parts.append(Part(name: rows.text(0), blob: rows.text(1), codec: rows.optionalText(2), rawSize: rows.optionalInt(3),
                              rowID: rows.isNull(4) ? nil : rows.int64(4), reference: reference))
        }
        let reader = try BlobReader(db)
        return try withExtendedLifetime(reader) {
            try stream(header: header.map { [UInt8]($0) }, parts: parts, read: { try reader.read(rowID: $0) }, checkBlobs: checkBlobs,
                       hashData: hashData, stopAtFirstProblem: stopAtFirstProblem, sink: sink)
        }
    }

    /// The blobs `stream` reads when nothing is damaged, in order, with their raw sizes: a part's
    /// reference when it differs from the last one decoded, then the part (parts without a row are
    /// skipped). A backend may fetch ahead by it (`BlobPrefetch`); `stream` must keep to it.
    static func readOrder(_ parts: [Part]) -> [(id: Int64, bytes: Int)] {
        var order: [(id: Int64, bytes: Int)] = []
        var lastReference: String?
        for part in parts {
            guard part.codec != nil, let rawSize = part.rawSize, let id = part.rowID else { continue }
            if let reference = part.reference, reference.blob != lastReference {
                lastReference = reference.blob
                if let referenceID = reference.rowID { order.append((referenceID, reference.rawSize ?? 0)) }
            }
            order.append((id, rawSize))
        }
        return order
    }

    /// The backend-independent part of `run`: `header` (nil when missing), then each part's blob as
    /// `read` returns its stored bytes (valid until the next call).
    static func stream(header: [UInt8]?, parts: [Part], read: (Int64) throws -> UnsafeRawBufferPointer, checkBlobs: Bool,
                       hashData: Bool, stopAtFirstProblem: Bool, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws -> Result {
        guard let headerBytes = header else { return Result(problems: ["its header is missing"]) }
        let state = State(sink: sink, hashData: hashData, stopAtFirstProblem: stopAtFirstProblem)
        headerBytes.withUnsafeBytes { state.whole.update($0) }
        try headerBytes.withUnsafeBytes { try sink($0) }

        let planes = ReusableBuffer()
        // The decoded reference of the last part that had one (consecutive parts often share it).
        let referenceBuffer = ReusableBuffer()
        var decodedReference: (blob: String, size: Int)?
        // Three chunks let decoding run ahead a little; with very large tensors (each its own chunk)
        // two keep memory near what it was with one buffer per tensor in flight.
        let largest = parts.lazy.compactMap(\.rawSize).max() ?? 0
        let chunks = BufferPool(count: largest > Rebuild.largeTensorBytes ? 2 : 3)
        let queue = DispatchQueue(label: "tlkit.catalog.rebuild")
        var chunk: Chunk?
        func handOver() {
            guard let full = chunk else { return }
            chunk = nil
            let work = UncheckedBox(full)
            queue.async {
                let full = work.value
                state.consume(full, checkBlobs: checkBlobs)
                chunks.give(full.buffer)
            }
        }
        for part in parts {
            guard let codecName = part.codec, let rawSize = part.rawSize, let rowID = part.rowID else {
                state.note("tensor '\(part.name)': its blob \(part.blob.prefix(12))… is missing")
                if stopAtFirstProblem { break }
                continue
            }
            if state.failed { break }
            do {
                var referenceBytes: UnsafeRawBufferPointer?
                if let reference = part.reference {
                    if decodedReference?.blob != reference.blob {
                        decodedReference = nil
                        let size = try decodeReference(reference, read: read, into: referenceBuffer, scratch: planes)
                        decodedReference = (reference.blob, size)
                    }
                    referenceBytes = UnsafeRawBufferPointer(referenceBuffer.prefix(decodedReference!.size))
                }
                let stored = try read(rowID)
                // The chunk is taken only once the row's raw size is known to match the stored bytes.
                try Codec.decode(codecName: codecName, rawSize: rawSize, stored: stored, reference: referenceBytes, scratch: planes) { size in
                    if let open = chunk, open.used + size > open.memory.count { handOver() }
                    if chunk == nil {
                        let buffer = chunks.take()
                        chunk = Chunk(buffer: buffer, memory: buffer.prefix(max(Rebuild.chunkBytes, size)))
                    }
                    return UnsafeMutableRawBufferPointer(rebasing: chunk!.memory[chunk!.used..<(chunk!.used + size)])
                }
            } catch {
                state.note("tensor '\(part.name)' (blob \(part.blob.prefix(12))…): cannot decode: \(error)")
                if stopAtFirstProblem { break }
                continue
            }
            chunk!.tensors.append((part.name, part.blob, chunk!.used..<(chunk!.used + rawSize)))
            chunk!.used += rawSize
        }
        if let open = chunk, open.used == 0 { chunks.give(open.buffer); chunk = nil }
        handOver()
        queue.sync {}
        if let error = state.error { throw error }
        return Result(fileHash: state.whole.finalize(), dataHash: hashData ? "0x" + state.data.finalize() : "",
                      problems: state.problems)
    }

    /// Decodes a part's reference blob into `buffer` and returns its raw size. A missing reference, or
    /// one with a reference of its own (never written), is an error: nothing is guessed.
    static func decodeReference(_ reference: ReferencePart, read: (Int64) throws -> UnsafeRawBufferPointer, into buffer: ReusableBuffer,
                                scratch: ReusableBuffer) throws -> Int {
        guard let codec = reference.codec, let rawSize = reference.rawSize, let rowID = reference.rowID, !reference.chained else {
            throw unusable(reference)
        }
        try Codec.decode(codecName: codec, rawSize: rawSize, stored: try read(rowID), scratch: scratch) { buffer.prefix($0) }
        return rawSize
    }

    /// Why a reference blob cannot be used: its row is missing, or it names a reference of its own.
    static func unusable(_ reference: ReferencePart) -> CatalogError {
        if reference.chained {
            return CatalogError.corrupt("its reference blob \(reference.blob.prefix(12))… is itself stored against another blob")
        }
        return CatalogError.corrupt("its reference blob \(reference.blob.prefix(12))… is missing")
    }

    /// How many decoded bytes are gathered before they are handed to the hashing thread.
    static let chunkBytes = 1 << 20

    /// Tensors above this size make the pipeline hold fewer chunks.
    static let largeTensorBytes = 64 << 20

    /// Decoded tensors laid end to end in one buffer, in data order.
    private struct Chunk {
        let buffer: ReusableBuffer
        let memory: UnsafeMutableRawBufferPointer
        var used = 0
        var tensors: [(name: String, blob: String, range: Range<Int>)] = []
    }

    /// Hashers, sink and findings, touched by one thread at a time (the pipeline hands over in order).
    private final class State: @unchecked Sendable {
        var whole = StreamHasher()
        var data = StreamHasher()
        var problems: [String] = []
        var error: Error?
        /// Set when a damaged tensor ended the stream (`stopAtFirstProblem`).
        var halted = false
        let sink: (UnsafeRawBufferPointer) throws -> Void
        let hashData: Bool
        let stopAtFirstProblem: Bool
        private let lock = Lock()

        init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void, hashData: Bool, stopAtFirstProblem: Bool) {
            self.sink = sink
            self.hashData = hashData
            self.stopAtFirstProblem = stopAtFirstProblem
        }

        /// Whether the sink failed or the stream was halted: nothing more is worth decoding.
        var failed: Bool { lock.withLock { error != nil || halted } }

        func note(_ problem: String) { lock.withLock { problems.append(problem) } }

        func consume(_ chunk: Chunk, checkBlobs: Bool) {
            if failed { return }
            let all = UnsafeRawBufferPointer(rebasing: chunk.memory[0..<chunk.used])
            // Each tensor is checked before any of the chunk is passed on. The checks and the file's own
            // hashes read the same bytes, so they run side by side (when a damaged tensor halts the
            // stream, the file's hash no longer matters).
            var mismatches = [String?](repeating: nil, count: checkBlobs ? chunk.tensors.count : 0)
            mismatches.withUnsafeMutableBufferPointer { slots in
                // Each iteration writes its own slot; the chunk is not touched by anyone else meanwhile.
                let slots = UncheckedBox(slots), shared = UncheckedBox((all, chunk))
                DispatchQueue.concurrentPerform(iterations: slots.value.count + 1) { k in
                    let (all, chunk) = shared.value
                    guard k < slots.value.count else {
                        whole.update(all)
                        if hashData { data.update(all) }
                        return
                    }
                    let tensor = chunk.tensors[k]
                    let actual = Hashing.sha256(UnsafeRawBufferPointer(rebasing: chunk.memory[tensor.range]))
                    if actual != tensor.blob { slots.value[k] = actual }
                }
            }
            var end = chunk.used
            for (tensor, actual) in zip(chunk.tensors, mismatches) {
                guard let actual else { continue }
                note("tensor '\(tensor.name)': stored bytes hash to \(actual.prefix(12))…, not their address \(tensor.blob.prefix(12))…")
                if stopAtFirstProblem { end = tensor.range.lowerBound; break }
            }
            let bytes = UnsafeRawBufferPointer(rebasing: chunk.memory[0..<end])
            if !bytes.isEmpty { do { try sink(bytes) } catch { lock.withLock { self.error = error } } }
            if end < chunk.used { lock.withLock { halted = true } }
        }
    }
}
