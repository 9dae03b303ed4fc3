import PostgresNIO

/// Reads a rebuild's blobs from the server in batches, a batch ahead of the one being decoded. One
/// statement per blob paid a round trip for each of a checkpoint's thousands of tensors, and left the
/// server idle while the client decoded (`get` ran at a third of the SQLite catalog's speed). Here one
/// statement returns the chunks of several blobs in order, and the connection, which answers
/// statements in the order they were sent, is already fetching the next batch while this one is used.
///
/// The order is `Rebuild.readOrder`. A read that was not predicted (a part the rebuild skipped after a
/// problem) is asked for on its own, and the prediction goes on after it.
final class BlobPrefetch {
    /// A batch holds at most this many blobs and this many raw bytes; two batches are in flight.
    static let batchBlobs = 256
    static let batchBytes = 16 << 20
    static let batchesInFlight = 2

    private let session: PostgresSession
    private let order: [(id: Int64, bytes: Int)]
    private var next = 0
    /// Batches asked for, oldest first: the ids they hold, in order, and the server's answer.
    private var inFlight: [(ids: ArraySlice<Int64>, answer: EventLoopFuture<PostgresQueryResult>)] = []
    /// The batch being read: each blob's chunks, in order.
    private var current: [(id: Int64, chunks: [ByteBuffer])] = []
    private var position = 0
    private let buffer = ReusableBuffer()

    static let batchQuery = """
        SELECT u.k, c.data FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, k)
        JOIN blob_chunks c ON c.blob_id = u.id ORDER BY u.k, c.seq
        """

    init(session: PostgresSession, parts: [Rebuild.Part]) {
        self.session = session
        order = Rebuild.readOrder(parts)
    }

    /// The stored bytes of blob `id` (valid until the next read).
    func read(_ id: Int64) throws -> UnsafeRawBufferPointer {
        askAhead()
        while true {
            if let k = current[position...].firstIndex(where: { $0.id == id }) {
                // Blobs before it were for parts the rebuild skipped.
                position = k + 1
                return PostgresCatalog.joinChunks(current[k].chunks, into: buffer)
            }
            guard let first = inFlight.first, first.ids.first == id else { break }
            try take()
        }
        // Not predicted: asked for on its own; the prediction goes on after it if it lies ahead.
        if let j = order[next...].firstIndex(where: { $0.id == id }) {
            inFlight.removeAll()
            current = []
            position = 0
            next = j + 1
        }
        return try PostgresCatalog.joinChunks(try session.query(PostgresCatalog.chunksQuery, [id]), into: buffer)
    }

    /// Starts the batch after the last asked for, if any, and makes the oldest in flight current.
    private func take() throws {
        let batch = inFlight.removeFirst()
        askAhead()
        var blobs = batch.ids.map { (id: $0, chunks: [ByteBuffer]()) }
        for row in try session.rows(of: batch.answer) {
            let (k, data) = try row.decode((Int64, ByteBuffer).self)
            guard k >= 1, k <= blobs.count else { throw CatalogError.corrupt("the server answered a blob that was not asked for") }
            blobs[Int(k) - 1].chunks.append(data)
        }
        current = blobs
        position = 0
    }

    /// Asks for batches until `batchesInFlight` are.
    private func askAhead() {
        while inFlight.count < BlobPrefetch.batchesInFlight, next < order.count {
            var end = next, bytes = 0
            while end < order.count, end - next < BlobPrefetch.batchBlobs, end == next || bytes + order[end].bytes <= BlobPrefetch.batchBytes {
                bytes += order[end].bytes
                end += 1
            }
            let ids = ArraySlice(order[next..<end].map(\.id))
            var binds = PostgresBindings()
            binds.append(Array(ids))
            inFlight.append((ids, session.send(BlobPrefetch.batchQuery, binds)))
            next = end
        }
    }
}
