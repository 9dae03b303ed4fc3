import BLASThreads
import CBLAS
import Dispatch
import Foundation

/// Thread settings shared by the engine's own loops and OpenBLAS.
///
/// `threads` is the `--threads N` knob: commands set it once at start-up; it
/// bounds both the chunk count of `parallelFor` and OpenBLAS's thread pool.
public enum Parallel {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var current = ProcessInfo.processInfo.activeProcessorCount

    public static var threads: Int {
        get { lock.withLock { current } }
        set {
            let n = max(1, newValue)
            lock.withLock { current = n }
            BLASThreads.set(n)
            setOpenMPThreads(n)
        }
    }

    /// Stops OpenBLAS's worker threads until BLAS next runs on several threads (it then starts them
    /// again). They start when the library loads and spin (sched_yield) for about 0.1 s of CPU waiting
    /// for work: a process that does little or no BLAS gets that core back. Call it at process
    /// start-up only, never while BLAS may be running.
    public static func stopIdleBLASWorkers() {
        _ = blas_thread_shutdown_()
    }

    /// oneDNN's OpenMP threads busy-wait for milliseconds after every parallel region by default, holding
    /// a core the engine's own threads need for the element-wise work between products (measured: 30
    /// sampling steps of the fixture model in bf16 took 15.4 s instead of 2.4 s). OpenMP reads its wait
    /// policy once, when the library loads, so a process that was given none starts itself again with
    /// OMP_WAIT_POLICY=PASSIVE: same process id, same arguments. Call it first thing, in processes that
    /// will run oneDNN; nothing happens when the variable is set (the user's choice wins) or exec fails.
    public static func restartWithPassiveOpenMPIfNeeded() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// Runs `body` with OpenBLAS on one thread, for callers that run
    /// independent GEMMs concurrently themselves (e.g. one attention head per thread).
    /// Safe when several callers overlap (`BLASThreads.serial`).
    public static func withSerialBLAS<R>(_ body: () -> R) -> R {
        BLASThreads.serial(body)
    }

    /// Runs `body` over `0..<count` split into at most `threads` contiguous
    /// chunks of at least `grain` items each. Small loops run inline, so
    /// callers need not special-case them.
    @inlinable
    public static func forEach(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(threads, (count + max(grain, 1) - 1) / max(grain, 1))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            // Chunks write disjoint ranges; the box only carries the closure
            // across Dispatch's @Sendable boundary.
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks
                let hi = count * (c + 1) / chunks
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// oneDNN's threads are OpenMP's: its runtime (libgomp, loaded with oneDNN) is told the same count.
/// Looked up at run time because OpenMP has no module of its own here.
private func setOpenMPThreads(_ n: Int) {
    typealias SetThreads = @convention(c) (Int32) -> Void
    guard let symbol = dlsym(nil, "omp_set_num_threads") else { return }  // nil: RTLD_DEFAULT, every loaded library
    unsafeBitCast(symbol, to: SetThreads.self)(Int32(n))
}

@usableFromInline
struct UncheckedSendable<V>: @unchecked Sendable {
    @usableFromInline let value: V
    @usableFromInline init(_ value: V) { self.value = value }
}
