import Foundation
import CMalloc

/// Where the buffers of large tensors come from: fresh mappings, kept after use and handed out again.
///
/// A UNet step allocates and frees the same activation sizes over and over (a 1024 px sampling step:
/// about 14 GB of tensors of 1–340 MB). glibc maps every block above 32 MB afresh and gives freed heap
/// tops back to the kernel, so each of those tensors page-faulted its memory in again, zero-filled by the
/// kernel: 3.4 million page faults and about 5 s of kernel time per 1024 px step (measured with
/// `perf record -e page-faults`). Buffers of `poolFrom` bytes and more are therefore mapped here, rounded to
/// whole 2 MB (so a repeated size finds its buffer again), and kept after use up to `cachedLimit` bytes,
/// oldest released first. `trim()` returns the kept ones. (Asking for transparent huge pages made training
/// slower: with the kernel's `defrag=madvise`, every fresh mapping's first touch waited for compaction.)
public enum TensorMemory {
    static let poolFrom = 1 << 20
    static let granule = 2 << 20
    /// Kept at most (2 GB: a 512 px training step with less got slower again, measured). A phase that reuses
    /// little may lower it (`sample` does for the VAE decode, whose layers each run once), and so does one
    /// short of memory (training with recomputation: `leanLimit`).
    public static var cachedLimit: Int {
        get { lock.withLock { limit } }
        set { lock.withLock { limit = max(0, newValue) }; shrink() }
    }

    private static let lock = NSLock()
    /// Kept buffers, oldest first.
    nonisolated(unsafe) private static var kept: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
    nonisolated(unsafe) private static var keptBytes = 0
    nonisolated(unsafe) private static var limit = defaultLimit
    public static let defaultLimit = 2 << 30
    public static let leanLimit = 256 << 20
    /// Bytes of pooled buffers handed out and not yet released, and the highest in-use + kept total seen
    /// (with what was kept then): what the pool held at the process's busiest moment.
    nonisolated(unsafe) private static var inUse = 0
    nonisolated(unsafe) private static var peak = (total: 0, kept: 0)

    /// With `TLKIT_POISON_UNINITIALIZED=1`, buffers handed out uninitialised are filled with 0xFF bytes
    /// (NaN in every float type): an operation that reads what it did not write then shows up as NaN
    /// instead of as results that depend on what a released tensor left.
    static let poisonUninitialized = ProcessInfo.processInfo.environment["TLKIT_POISON_UNINITIALIZED"] == "1"

    /// A 64-byte aligned buffer of at least `bytes`, zero-filled when `zeroed` (else it may hold what a
    /// released tensor left); `capacity` is what `release` needs back.
    static func allocate(_ bytes: Int, zeroed: Bool = true) -> (pointer: UnsafeMutableRawPointer, capacity: Int) {
        let fill: UInt8? = zeroed ? 0 : poisonUninitialized ? 0xFF : nil
        guard bytes >= poolFrom else {
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
            if let fill { pointer.initializeMemory(as: UInt8.self, repeating: fill, count: max(bytes, 1)) }
            return (pointer, bytes)
        }
        let capacity = (bytes + granule - 1) / granule * granule
        let reusable = takeKept(capacity)
        lock.withLock {
            inUse += capacity
            if inUse + keptBytes > peak.total { peak = (inUse + keptBytes, keptBytes) }
        }
        if let reused = reusable {
            if let fill { reused.initializeMemory(as: UInt8.self, repeating: fill, count: bytes) }
            return (reused, capacity)
        }
        let fresh = map(capacity)  // fresh anonymous pages read as zero
        if let fill, fill != 0 { fresh.initializeMemory(as: UInt8.self, repeating: fill, count: bytes) }
        return (fresh, capacity)
    }

    static func release(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        guard capacity >= poolFrom else { return pointer.deallocate() }
        lock.withLock {
            inUse -= capacity
            kept.append((pointer, capacity))
            keptBytes += capacity
        }
        shrink()
    }

    /// Unmaps the oldest kept buffers until the rest fit the limit.
    private static func shrink() {
        var evicted: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
        lock.withLock {
            while keptBytes > limit, !kept.isEmpty {
                let oldest = kept.removeFirst()
                keptBytes -= oldest.bytes
                evicted.append(oldest)
            }
        }
        for e in evicted { munmap(e.pointer, e.bytes) }
    }

    /// Unmaps every kept buffer and hands malloc's free pages back (after loading, before a phase that needs
    /// the memory for something else, e.g. the VAE).
    public static func trim() {
        let all = lock.withLock { () -> [(pointer: UnsafeMutableRawPointer, bytes: Int)] in
            defer { kept = []; keptBytes = 0 }
            return kept
        }
        for e in all { munmap(e.pointer, e.bytes) }
        _ = malloc_trim(0)
    }

    /// Bytes kept for reuse now (for tests and profiles).
    public static var cachedBytes: Int { lock.withLock { keptBytes } }

    /// The pool's busiest moment since the start or `resetPeak()`: buffers in use plus kept, and the kept part.
    public static var peakBytes: (total: Int, kept: Int) { lock.withLock { peak } }

    /// Starts a new busiest-moment record from what the pool holds now (e.g. after loading).
    public static func resetPeak() { lock.withLock { peak = (inUse + keptBytes, keptBytes) } }

    /// The most recently kept buffer of exactly `capacity` bytes (warm in cache), removed from the list.
    private static func takeKept(_ capacity: Int) -> UnsafeMutableRawPointer? {
        lock.withLock {
            guard let i = kept.lastIndex(where: { $0.bytes == capacity }) else { return nil }
            keptBytes -= capacity
            return kept.remove(at: i).pointer
        }
    }

    private static func map(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: cannot map \(bytes) bytes for a tensor")
        }
        return p
    }
}
