import CPNG

/// PNG through libpng, with Pillow's choices: palettes expanded, tRNS as alpha, 16-bit samples keep
/// their high byte, gamma and colour profiles ignored.
enum PNGDecoder {
    static func decode(_ data: [UInt8], name: String) throws -> DecodedImage {
        var decoded = tlk_png_image()
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBufferPointer { input in
            tlk_png_decode(input.baseAddress, input.count, UInt(ImageLimits.maxPixels), &decoded, &message, message.count)
        }
        guard status == 0 else { throw ImageError(file: name, reason: .corrupt("PNG: " + messageText(message))) }
        defer { tlk_png_image_free(&decoded) }

        let layouts: [Int32: SampleLayout] = [1: .gray, 2: .grayAlpha, 3: .rgb, 4: .rgba]
        guard let layout = layouts[decoded.channels] else {
            throw ImageError(file: name, reason: .corrupt("PNG: unexpected \(decoded.channels) channels"))
        }
        let count = Int(decoded.width) * Int(decoded.height) * layout.channels
        let rgb = PixelConversion.toRGB(UnsafeBufferPointer(start: decoded.pixels, count: count), layout: layout)
        let image = RGBImage(checkedWidth: Int(decoded.width), height: Int(decoded.height), pixels: rgb)

        var orientation = ExifOrientation.up
        if let exif = decoded.exif, decoded.exif_size > 0 {
            orientation = ExifOrientation.inTIFF(Array(UnsafeBufferPointer(start: exif, count: decoded.exif_size))) ?? .up
        }
        return DecodedImage(image: image.oriented(orientation), format: .png, hadAlpha: layout.hasAlpha,
                            orientation: orientation, bitDepth: Int(decoded.bit_depth),
                            textChunks: textChunks(decoded.text, size: decoded.text_size))
    }

    /// Parses the shim's [kind] key NUL value NUL records; tEXt/zTXt are Latin-1, iTXt UTF-8.
    static func textChunks(_ bytes: UnsafeMutablePointer<UInt8>?, size: Int) -> [PNGTextChunk] {
        guard let bytes, size > 0 else { return [] }
        let all = UnsafeBufferPointer(start: bytes, count: size)
        var chunks: [PNGTextChunk] = []
        var i = 0
        func field() -> ArraySlice<UInt8> {
            let start = i
            while i < all.count && all[i] != 0 { i += 1 }
            defer { i += 1 }
            return ArraySlice(all[start..<i])
        }
        while i < all.count {
            let utf8 = all[i] == 1
            i += 1
            let key = latin1(field())
            let raw = field()
            chunks.append(PNGTextChunk(key, utf8 ? String(decoding: raw, as: UTF8.self) : latin1(raw)))
        }
        return chunks
    }

    static func latin1(_ bytes: ArraySlice<UInt8>) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }
}
