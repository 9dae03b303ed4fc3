import CZstd

/// Thin wrappers over the zstd one-shot API.
enum Zstd {
    /// Upper bound of the compressed size of `count` bytes.
    static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Compresses `source` into `destination` (at least `bound(source.count)` bytes) and returns the size.
    /// `workers` > 0 lets zstd split the input across threads (worth it only for large inputs).
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                         level: Int, workers: Int) throws -> Int {
        guard let cctx = ZSTD_createCCtx() else { throw CatalogError.codec("zstd: cannot allocate a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
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

    /// Decompresses one frame into `destination`, which must be exactly the original size.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws {
        guard let dctx = ZSTD_createDCtx() else { throw CatalogError.codec("zstd: cannot allocate a decompression context") }
        defer { ZSTD_freeDCtx(dctx) }
        let n = ZSTD_decompressDCtx(dctx, destination.baseAddress, destination.count, source.baseAddress, source.count)
        try check(n)
        if n != destination.count {
            throw CatalogError.codec("zstd: frame holds \(n) bytes, expected \(destination.count)")
        }
    }

    private static func check(_ code: Int) throws {
        if ZSTD_isError(code) != 0 {
            throw CatalogError.codec("zstd: \(String(cString: ZSTD_getErrorName(code)))")
        }
    }
}
