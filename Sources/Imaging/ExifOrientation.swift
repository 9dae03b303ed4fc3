/// EXIF tag 0x0112: how the stored pixels must be turned to show the picture upright.
/// Each case is named by the correction that makes the stored pixels upright (EXIF values 1–8).
public enum ExifOrientation: Int, Sendable, CaseIterable {
    case up = 1, flipHorizontal = 2, rotate180 = 3, flipVertical = 4
    case transpose = 5, rotate90Clockwise = 6, transverse = 7, rotate90CounterClockwise = 8

    /// The orientation in a JPEG's first APP1 "Exif" segment, `.up` when there is none or it is invalid.
    static func inJPEG(_ bytes: [UInt8]) -> ExifOrientation {
        var i = 2  // after SOI
        while i + 4 <= bytes.count {
            guard bytes[i] == 0xFF else { return .up }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return .up }  // image data starts: no more metadata
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let start = i + 4, end = i + 2 + length
            guard length >= 2, end <= bytes.count else { return .up }
            let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]  // "Exif\0\0"
            if marker == 0xE1, end - start >= 6, Array(bytes[start..<start + 6]) == exifHeader {
                return inTIFF(Array(bytes[(start + 6)..<end])) ?? .up
            }
            i = end
        }
        return .up
    }

    /// The orientation tag of IFD0 in TIFF-structured EXIF data ("II" or "MM" byte order), or nil.
    static func inTIFF(_ tiff: [UInt8]) -> ExifOrientation? {
        guard tiff.count >= 8 else { return nil }
        let little: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            return little ? Int(tiff[at]) | Int(tiff[at + 1]) << 8 : Int(tiff[at]) << 8 | Int(tiff[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let a = u16(at), let b = u16(at + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let entries = u16(ifd) else { return nil }
        for e in 0..<entries {
            let entry = ifd + 2 + 12 * e
            guard let tag = u16(entry), let type = u16(entry + 2) else { return nil }
            guard tag == 0x0112 else { continue }
            let value: Int?
            switch type {
            case 3: value = u16(entry + 8)  // SHORT
            case 4: value = u32(entry + 8)  // LONG
            default: value = nil
            }
            return value.flatMap(ExifOrientation.init(rawValue:))
        }
        return nil
    }
}

extension RGBImage {
    /// The image turned upright for `orientation`, as Pillow's `ImageOps.exif_transpose`
    /// (2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
    /// 8 rotate 90° counter-clockwise). Orientations 5–8 swap width and height.
    public func oriented(_ orientation: ExifOrientation) -> RGBImage {
        if orientation == .up { return self }
        let swaps = orientation.rawValue >= 5
        let outW = swaps ? height : width, outH = swaps ? width : height
        let (w, h) = (width, height)
        // Source pixel of output (x, y).
        let source: (Int, Int) -> (Int, Int)
        switch orientation {
        case .up: source = { ($0, $1) }
        case .flipHorizontal: source = { (w - 1 - $0, $1) }
        case .rotate180: source = { (w - 1 - $0, h - 1 - $1) }
        case .flipVertical: source = { ($0, h - 1 - $1) }
        case .transpose: source = { ($1, $0) }
        case .rotate90Clockwise: source = { ($1, h - 1 - $0) }
        case .transverse: source = { (w - 1 - $1, h - 1 - $0) }
        case .rotate90CounterClockwise: source = { (w - 1 - $1, $0) }
        }
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<outH {
                    for x in 0..<outW {
                        let (sx, sy) = source(x, y)
                        let s = (sy * w + sx) * 3, d = (y * outW + x) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(checkedWidth: outW, height: outH, pixels: out)
    }
}
