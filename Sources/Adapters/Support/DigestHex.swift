import Crypto
import Foundation

extension SHA256.Digest {
    /// Lowercase hex, as `sshs_model_hash`, `modelspec.hash_sha256` and `tlora.data_sha256` spell it.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
