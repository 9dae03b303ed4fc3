import CJPEG
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// JPEG through libjpeg-turbo (islow DCT, fancy upsampling: the library defaults, as Pillow uses).
enum JPEGDecoder {
    static func decode(_ data: [UInt8], name: String) throws -> DecodedImage {
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        var samples: UnsafeMutablePointer<UInt8>?
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBufferPointer { input in
            tlk_jpeg_decode(input.baseAddress, UInt(input.count), UInt(ImageLimits.maxPixels),
                            &width, &height, &channels, &samples, &message, message.count)
        }
        guard status == 0, let samples else {
            throw ImageError(file: name, reason: .corrupt("JPEG: " + messageText(message)))
        }
        defer { free(samples) }
        let count = Int(width) * Int(height) * Int(channels)
        let raw = UnsafeBufferPointer(start: samples, count: count)
        let layout: SampleLayout = channels == 1 ? .gray : channels == 4 ? .cmyk : .rgb
        let image = RGBImage(checkedWidth: Int(width), height: Int(height), pixels: PixelConversion.toRGB(raw, layout: layout))
        let orientation = ExifOrientation.inJPEG(data)
        return DecodedImage(image: image.oriented(orientation), format: .jpeg, hadAlpha: false,
                            orientation: orientation, bitDepth: 8, textChunks: [])
    }
}
