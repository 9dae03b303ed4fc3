import CBLAS
import Foundation

/// OpenBLAS's thread count is process-wide; this is the one place that changes it. Callers that run
/// independent products on several threads themselves (attention heads, diff's modules) run them in a
/// `serial` section, with OpenBLAS on one thread: concurrent multi-threaded calls would share its pool.
/// Sections may overlap (two computations in one process): OpenBLAS stays on one thread until the last
/// one ends, and only then gets its count back. (Saving and restoring the count around each section let
/// one caller hand the threads back while another still ran its heads concurrently.)
public enum BLASThreads {
    private static let lock = NSLock()
    /// The count outside serial sections; nil until set, OpenBLAS's own until then.
    nonisolated(unsafe) private static var count: Int32?
    nonisolated(unsafe) private static var sections = 0

    /// The count OpenBLAS uses outside serial sections (inside one it takes effect when the last ends).
    public static func set(_ threads: Int) {
        lock.withLock {
            count = Int32(max(1, threads))
            if sections == 0 { openblas_set_num_threads(count!) }
        }
    }

    /// Runs `body` with OpenBLAS on one thread.
    public static func serial<R>(_ body: () throws -> R) rethrows -> R {
        lock.withLock {
            if sections == 0 {
                if count == nil { count = openblas_get_num_threads() }
                openblas_set_num_threads(1)
            }
            sections += 1
        }
        defer {
            lock.withLock {
                sections -= 1
                if sections == 0 { openblas_set_num_threads(count!) }
            }
        }
        return try body()
    }
}
