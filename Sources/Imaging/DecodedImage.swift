/// An image file read into RGB, with what reading it changed.
public struct DecodedImage: Sendable {
    /// The pixels, already turned upright and composited on white.
    public var image: RGBImage
    public var format: ImageFormat
    /// The file had alpha (an alpha channel, or a PNG tRNS chunk) and was composited on white.
    public var hadAlpha: Bool
    /// The EXIF orientation that was applied (`.up` when the file has none).
    public var orientation: ExifOrientation
    /// Bits per sample in the file (1, 2, 4, 8 or 16); 16-bit samples keep their high byte.
    public var bitDepth: Int
    /// PNG text chunks (tEXt, zTXt, iTXt) in file order; empty for JPEG.
    public var textChunks: [PNGTextChunk]

    /// The value of the first text chunk named `key` (for example "parameters").
    public func text(_ key: String) -> String? { textChunks.first { $0.key == key }?.value }
}

/// A PNG text chunk: a Latin-1 keyword of 1–79 characters and its text.
public struct PNGTextChunk: Equatable, Sendable {
    public var key: String
    public var value: String

    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}
