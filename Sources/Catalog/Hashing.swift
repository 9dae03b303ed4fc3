import Crypto
import DigestHex

/// SHA-256 helpers (swift-crypto uses the CPU's SHA instructions).
enum Hashing {
    static func sha256(_ bytes: UnsafeRawBufferPointer) -> String {
        SHA256.hash(data: bytes).hex
    }
}

/// Feeds a long byte stream to SHA-256 in slices, so very large regions hash without extra copies.
struct StreamHasher {
    private var hasher = SHA256()

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 64 << 20)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
            offset += n
        }
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    func finalize() -> String { hasher.finalize().hex }
}
