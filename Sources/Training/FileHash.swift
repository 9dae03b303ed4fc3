import Crypto
import DigestHex
import Foundation

/// SHA-256 of a whole file, read in large chunks (a 6.9 GB SDXL checkpoint takes seconds), as hex.
public enum FileHash {
    public static func sha256(path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TrainingError.badSetting("cannot read \(path) to hash it")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 16 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().hex
    }
}
