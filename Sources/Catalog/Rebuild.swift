import Foundation
import GRDB
import SafeTensors

/// Streams an entry's original bytes — stored header, then each tensor decoded in data order — into a
/// sink, hashing as it goes. Decoding runs on the calling (database) thread while hashing and writing
/// the previous tensor run on a second thread; at most two decoded tensors are in memory.
struct Rebuild {
    struct Result {
        var fileHash = ""
        var dataHash = ""
        var problems: [String] = []
    }

    /// `checkBlobs` also re-hashes each tensor against its content address and `hashData` the data
    /// section on its own (what `verify` does); otherwise only the whole file is hashed.
    static func run(_ db: Database, entryID: Int64, checkBlobs: Bool, hashData: Bool = false,
                    sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws -> Result {
        guard let header = try Data.fetchOne(db, sql: "SELECT bytes FROM entry_headers WHERE entry_id = ?", arguments: [entryID]) else {
            return Result(problems: ["its header is missing"])
        }
        let state = State(sink: sink, hashData: hashData)
        let headerBytes = [UInt8](header)
        headerBytes.withUnsafeBytes { state.whole.update($0) }
        try headerBytes.withUnsafeBytes { try sink($0) }

        let queue = DispatchQueue(label: "tlkit.catalog.rebuild")
        let slots = DispatchSemaphore(value: 2)
        let rows = try Row.fetchCursor(db, sql: """
            SELECT t.name, t.blob, b.codec, b.raw_size, b.data FROM entry_tensors t
            LEFT JOIN blobs b ON b.sha256 = t.blob WHERE t.entry_id = ? ORDER BY t.ordinal
            """, arguments: [entryID])
        while let row = try rows.next() {
            let name: String = row[0], blob: String = row[1]
            guard let codecName: String = row[2], let rawSize: Int = row[3] else {
                state.note("tensor '\(name)': its blob \(blob.prefix(12))… is missing")
                continue
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, rawSize), alignment: 16)
            let decoded = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<rawSize])
            do {
                let codec = try Codec(name: codecName)
                try row.withUnsafeData(atIndex: 4) { data in
                    guard let data else { throw CatalogError.corrupt("no data") }
                    try data.withUnsafeBytes { try codec.decode($0, into: decoded) }
                }
            } catch {
                buffer.deallocate()
                state.note("tensor '\(name)' (blob \(blob.prefix(12))…): cannot decode: \(error)")
                continue
            }
            slots.wait()
            let work = UncheckedBox((buffer, decoded))
            queue.async {
                let (buffer, decoded) = work.value
                defer { buffer.deallocate(); slots.signal() }
                state.consume(UnsafeRawBufferPointer(decoded), name: name, blob: checkBlobs ? blob : nil)
            }
        }
        queue.sync {}
        if let error = state.error { throw error }
        return Result(fileHash: state.whole.finalize(), dataHash: hashData ? "0x" + state.data.finalize() : "",
                      problems: state.problems)
    }

    /// Hashers, sink and findings, touched by one thread at a time (the pipeline hands over in order).
    private final class State: @unchecked Sendable {
        var whole = StreamHasher()
        var data = StreamHasher()
        var problems: [String] = []
        var error: Error?
        let sink: (UnsafeRawBufferPointer) throws -> Void
        let hashData: Bool
        private let lock = Lock()

        init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void, hashData: Bool) {
            self.sink = sink
            self.hashData = hashData
        }

        func note(_ problem: String) { lock.withLock { problems.append(problem) } }

        func consume(_ bytes: UnsafeRawBufferPointer, name: String, blob: String?) {
            if error != nil { return }
            whole.update(bytes)
            if hashData { data.update(bytes) }
            if let blob {
                let actual = Hashing.sha256(bytes)
                if actual != blob { note("tensor '\(name)': stored bytes hash to \(actual.prefix(12))…, not their address \(blob.prefix(12))…") }
            }
            do { try sink(bytes) } catch { self.error = error }
        }
    }
}
