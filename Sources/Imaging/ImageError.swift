/// A file that cannot be read or written as an image, naming the file and the problem in one line.
public struct ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Reason: Error, Equatable, Sendable {
        /// The file could not be read (missing, a folder, no permission).
        case cannotOpen(String)
        /// The bytes are a known format tlkit does not read (GIF, WebP, ...) or no image at all.
        case unsupportedFormat(String)
        /// A JPEG or PNG that its library refuses (truncated, bad CRC, bad Huffman data, ...).
        case corrupt(String)
        /// More pixels than tlkit is willing to allocate.
        case tooLarge(width: Int, height: Int)
        /// A PNG text chunk that PNG cannot carry.
        case invalidTextChunk(String)
        case writeFailed(String)
    }

    public let file: String
    public let reason: Reason

    public init(file: String, reason: Reason) {
        self.file = file
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .cannotOpen(let why): return "\(file): cannot read the image: \(why)"
        case .unsupportedFormat(let what): return "\(file): \(what); tlkit reads JPEG and PNG images"
        case .corrupt(let why): return "\(file): not a readable image: \(why)"
        case .tooLarge(let w, let h): return "\(file): \(w)x\(h) pixels is more than tlkit reads (\(ImageLimits.maxPixels) pixels)"
        case .invalidTextChunk(let why): return "\(file): invalid PNG text chunk: \(why)"
        case .writeFailed(let why): return "\(file): cannot write the image: \(why)"
        }
    }
}

/// Bounds that keep a hostile header from asking for gigabytes.
public enum ImageLimits {
    /// 16384 × 16384: far above SDXL's 1024 px, well below what would exhaust memory (0.8 GB of RGB).
    public static let maxPixels = 1 << 28
}

/// A NUL-terminated message that a C library wrote into `buffer`.
func messageText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
