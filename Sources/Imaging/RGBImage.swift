/// An 8-bit RGB image, the one pixel layout tlkit computes with.
///
/// `pixels` is [height, width, 3], row-major and interleaved: pixel (x, y) channel c is at
/// `(y * width + x) * 3 + c`.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// Wraps `pixels` ([height, width, 3]); nil when the count does not match or a side is not positive.
    public init?(width: Int, height: Int, pixels: [UInt8]) {
        guard width > 0, height > 0, pixels.count == width * height * 3 else { return nil }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width` × `height` image filled with one colour.
    public init(width: Int, height: Int, red: UInt8, green: UInt8, blue: UInt8) {
        precondition(width > 0 && height > 0, "image sides must be positive")
        self.width = width
        self.height = height
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: pixels.count, by: 3) {
            pixels[i] = red
            pixels[i + 1] = green
            pixels[i + 2] = blue
        }
        self.pixels = pixels
    }

    /// Unchecked initialiser for code in this module that has already sized `pixels`.
    init(checkedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The (red, green, blue) of pixel (x, y).
    public subscript(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}
