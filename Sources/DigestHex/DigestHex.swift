import Crypto

extension SHA256.Digest {
    /// Lowercase hex: the one spelling of a SHA-256 that tlkit writes and compares (`tlora.data_sha256`,
    /// `sshs_model_hash`, `tlora.base_model_sha256`, the catalog's tensor keys). Digit by digit rather than
    /// through String(format:), because the catalog spells one per tensor.
    public var hex: String {
        var out = [UInt8]()
        out.reserveCapacity(2 * Self.byteCount)
        for byte in self {
            out.append(Self.digits[Int(byte >> 4)])
            out.append(Self.digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let digits = Array("0123456789abcdef".utf8)
}
