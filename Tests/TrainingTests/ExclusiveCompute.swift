import Foundation

/// Runs this target's UNet work one body at a time, so that two training runs do not compete for the
/// cores and memory. (A run beside other computations of the process was seen to lose bitwise
/// reproducibility when attention and diff saved and restored OpenBLAS's thread count around their own
/// threads' products, one handing the threads back while another still ran its heads; `BLASThreads` now
/// lets such sections overlap, and that no longer depends on this lock.)
enum ExclusiveCompute {
    private static let lock = NSLock()

    static func run<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
