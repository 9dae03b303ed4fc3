/// Reads untrusted bytes as one damaged `blobs` row — codec name, raw size and stored bytes — through
/// the same decoding path the header rebuild (`get`, `verify`, readers) takes. The fuzzer and its
/// regression tests call this; it must only ever return the decoded size or a typed error.
///
/// Layout: byte 0 picks the codec name (one past the known names is an unknown one), bytes 1…8 are the
/// raw size (little-endian Int64), the rest is the stored blob.
public enum CatalogProbe {
    public enum Outcome: Equatable {
        case decoded(byteCount: Int)
        case rejected(String)
    }

    static let codecNames = ["raw", "zstd", "shuffle2+zstd", "shuffle4+zstd", "shuffle8+zstd", "shuffle0+zstd"]

    public static func probe(_ bytes: [UInt8]) -> Outcome {
        guard bytes.count >= 9 else { return .rejected("shorter than a row") }
        let name = codecNames[Int(bytes[0]) % codecNames.count]
        let rawSize = Int(bytes[1..<9].reversed().reduce(Int64(0)) { $0 << 8 | Int64($1) })
        let buffer = ReusableBuffer()
        do {
            try bytes[9...].withUnsafeBytes { stored in
                try Codec.decode(codecName: name, rawSize: rawSize, stored: stored) { buffer.prefix($0) }
            }
            return .decoded(byteCount: rawSize)
        } catch {
            return .rejected("\(error)")
        }
    }
}
