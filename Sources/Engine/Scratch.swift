import Foundation

/// Reusable work buffers (im2col columns, attention scores, bf16 copies of activations).
///
/// A fresh 16 MB allocation per convolution costs thousands of page faults
/// and a memset — 10–20 % of a 640-channel 3×3 convolution at 32×32. Buffers
/// are handed out uninitialised, returned after use, and kept up to `cachedLimit`
/// bytes; callers must write before reading.
enum Scratch {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var free: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
    static let cachedLimit = 256 << 20

    static func with<T: Scalar, R>(_ count: Int, of: T.Type, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        let bytes = max(count, 1) * MemoryLayout<T>.stride
        let buffer = take(bytes)
        defer { give(buffer) }
        return body(buffer.pointer.bindMemory(to: T.self, capacity: max(count, 1)))
    }

    /// The same for untyped bytes (bf16 staging buffers, oneDNN layouts).
    static func withBytes<R>(_ bytes: Int, _ body: (UnsafeMutableRawPointer) -> R) -> R {
        let buffer = take(max(bytes, 1))
        defer { give(buffer) }
        return body(buffer.pointer)
    }

    /// The smallest cached buffer that fits, else a new 64-byte aligned one.
    private static func take(_ bytes: Int) -> (pointer: UnsafeMutableRawPointer, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        var buffer: (pointer: UnsafeMutableRawPointer, bytes: Int)
        if let i = free.indices.filter({ free[$0].bytes >= bytes }).min(by: { free[$0].bytes < free[$1].bytes }) {
            buffer = free.remove(at: i)
        } else {
            buffer = (UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64), bytes)
        }
        // Poisoned as TensorMemory's are (TLKIT_POISON_UNINITIALIZED=1), so a read before a write shows.
        if TensorMemory.poisonUninitialized { buffer.pointer.initializeMemory(as: UInt8.self, repeating: 0xFF, count: buffer.bytes) }
        return buffer
    }

    /// Returns a buffer to the cache, freeing the smallest ones beyond the limit.
    private static func give(_ buffer: (pointer: UnsafeMutableRawPointer, bytes: Int)) {
        lock.lock()
        defer { lock.unlock() }
        free.append(buffer)
        free.sort { $0.bytes > $1.bytes }
        var total = 0
        free = free.filter { b in
            total += b.bytes
            if total > cachedLimit { b.pointer.deallocate(); return false }
            return true
        }
    }
}
