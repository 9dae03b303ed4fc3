import Crypto
import DigestHex
import Dispatch

/// SHA-256 of a byte stream computed on its own thread, so hashing overlaps with writing the same
/// bytes. At most `pending` buffers wait to be hashed; `update` blocks beyond that, bounding memory.
final class BackgroundHasher: @unchecked Sendable {
    private let queue = DispatchQueue(label: "tlkit.hash")
    private let room: DispatchSemaphore
    private var hasher = SHA256()   // touched only on `queue`

    init(pending: Int = 4) { room = DispatchSemaphore(value: pending) }

    func update(_ bytes: [UInt8]) {
        room.wait()
        queue.async {
            self.hasher.update(data: bytes)
            self.room.signal()
        }
    }

    /// Waits for every buffer given so far and returns the digest in lowercase hex.
    func finalize() -> String {
        queue.sync { hasher.finalize().hex }
    }
}
