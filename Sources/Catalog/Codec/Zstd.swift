import CZstd
import SafeTensors

/// Thin wrappers over the zstd one-shot API. Contexts are pooled: creating one per small tensor costs
/// more than compressing it.
enum Zstd {
    /// Upper bound of the compressed size of `count` bytes.
    static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `source` into `destination` (at least `bound(source.count)` bytes) and returns the size.
    /// `workers` > 0 lets zstd split the input across threads (worth it only for large inputs).
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                         level: Int, workers: Int) throws -> Int {
        let cctx = try pool.compressionContext()
        defer { pool.giveBack(compression: cctx) }
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters)
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level)))
        if workers > 0 {
            // An error here means a libzstd built without threads: compress on one thread instead.
            if ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, Int32(workers))) == 0 {
                // Jobs small enough that every worker gets several.
                let job = max(1 << 20, source.count / (2 * workers))
                _ = ZSTD_CCtx_setParameter(cctx, ZSTD_c_jobSize, Int32(clamping: job))
            }
        }
        let n = ZSTD_compress2(cctx, destination.baseAddress, destination.count, source.baseAddress, source.count)
        try check(n)
        return n
    }

    /// Decompresses one or more concatenated frames into `destination`, which must be exactly the original size.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws {
        let dctx = try pool.decompressionContext()
        defer { pool.giveBack(decompression: dctx) }
        let n = ZSTD_decompressDCtx(dctx, destination.baseAddress, destination.count, source.baseAddress, source.count)
        try check(n)
        if n != destination.count {
            throw CatalogError.codec("zstd: frames hold \(n) bytes, expected \(destination.count)")
        }
    }

    /// The total size the frames in `source` declare, checked before any memory of that size is taken;
    /// nil when a frame does not record its size (the decoder then checks it).
    static func declaredSize(_ source: UnsafeRawBufferPointer) throws -> Int? {
        guard let base = source.baseAddress, source.count > 0 else { return 0 }
        var offset = 0, total = 0
        while offset < source.count {
            let frame = base + offset, left = source.count - offset
            let length = ZSTD_findFrameCompressedSize(frame, left)
            try check(length)
            let size = ZSTD_getFrameContentSize(frame, left)
            // ZSTD_CONTENTSIZE_ERROR and ZSTD_CONTENTSIZE_UNKNOWN (macros Swift does not import).
            if size == UInt64.max - 1 { throw CatalogError.codec("zstd: not a zstd frame at byte \(offset)") }
            if size == UInt64.max { return nil }
            let (sum, overflow) = total.addingReportingOverflow(Int(clamping: size))
            guard !overflow, size <= UInt64(Int.max) else { throw CatalogError.codec("zstd: frames declare more than \(Int.max) bytes") }
            total = sum
            offset += length
        }
        return total
    }

    private static func check(_ code: Int) throws {
        if ZSTD_isError(code) != 0 {
            throw CatalogError.codec("zstd: \(String(cString: ZSTD_getErrorName(code)))")
        }
    }

    private static let pool = ContextPool()

    /// Idle zstd contexts, shared by all threads.
    private final class ContextPool: @unchecked Sendable {
        private var compression: [OpaquePointer] = []
        private var decompression: [OpaquePointer] = []
        private let lock = Lock()

        func compressionContext() throws -> OpaquePointer {
            if let cctx = lock.withLock({ compression.popLast() }) { return cctx }
            guard let cctx = ZSTD_createCCtx() else { throw CatalogError.codec("zstd: cannot allocate a compression context") }
            return cctx
        }

        func decompressionContext() throws -> OpaquePointer {
            if let dctx = lock.withLock({ decompression.popLast() }) { return dctx }
            guard let dctx = ZSTD_createDCtx() else { throw CatalogError.codec("zstd: cannot allocate a decompression context") }
            return dctx
        }

        func giveBack(compression cctx: OpaquePointer) { lock.withLock { compression.append(cctx) } }

        func giveBack(decompression dctx: OpaquePointer) { lock.withLock { decompression.append(dctx) } }
    }
}
