import Foundation

/// Runs this target's UNet work one body at a time. Two UNets computing at once in one process share
/// process-wide settings (OpenBLAS's thread count, which attention switches while its heads run), and a
/// training run beside another was seen to lose bitwise reproducibility; the CLI runs one training per
/// process, where this cannot happen.
enum ExclusiveCompute {
    private static let lock = NSLock()

    static func run<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
