/// The container formats told apart by their first bytes (never by the file name).
public enum ImageFormat: String, Sendable {
    case jpeg, png

    /// The format of `bytes`, or an `unsupportedFormat` reason that names what the bytes look like.
    static func sniff(_ bytes: [UInt8]) -> Result<ImageFormat, ImageError.Reason> {
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + magic.count && Array(bytes[offset..<offset + magic.count]) == magic
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .success(.jpeg) }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .success(.png) }
        let known: [(String, [UInt8], Int)] = [
            ("a GIF image", Array("GIF8".utf8), 0),
            ("a WebP image", Array("WEBP".utf8), 8),
            ("a BMP image", Array("BM".utf8), 0),
            ("a TIFF image", [0x49, 0x49, 0x2A, 0x00], 0),
            ("a TIFF image", [0x4D, 0x4D, 0x00, 0x2A], 0),
            ("an AVIF/HEIF image", Array("ftyp".utf8), 4),
            ("a JPEG 2000 image", [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50], 0),
        ]
        for (name, magic, offset) in known where starts(magic, at: offset) {
            return .failure(.unsupportedFormat("\(name)"))
        }
        if bytes.isEmpty { return .failure(.unsupportedFormat("an empty file")) }
        return .failure(.unsupportedFormat("not a JPEG or PNG image"))
    }
}
