import CPNG
import SafeTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ImageFile {
    /// Writes `image` as an 8-bit RGB PNG to `path` atomically (a temporary file renamed into place; `-`
    /// writes to standard output), with `textChunks` as tEXt chunks, or iTXt when the text is not
    /// Latin-1 — for example `PNGTextChunk("parameters", ...)` as AUTOMATIC1111's web UI writes.
    public static func encodePNG(_ image: RGBImage, textChunks: [PNGTextChunk] = [], to path: String) throws {
        let bytes = try encodePNG(image, textChunks: textChunks, name: path)
        do {
            let output = try AtomicOutput(path)
            try output.write(bytes)
            try output.commit()
        } catch let error as SafeTensorsError {
            // AtomicOutput reports in safetensors terms; keep its text, name the image.
            if case .writeFailed(let why) = error.reason { throw ImageError(file: path, reason: .writeFailed(why)) }
            throw ImageError(file: path, reason: .writeFailed(error.description))
        }
    }

    /// The PNG file's bytes; `name` is what errors call it.
    public static func encodePNG(_ image: RGBImage, textChunks: [PNGTextChunk] = [], name: String = "<memory>") throws -> [UInt8] {
        var records: [UInt8] = []
        for chunk in textChunks {
            try validate(chunk, name: name)
            let latin1 = chunk.value.unicodeScalars.allSatisfy { $0.value >= 1 && $0.value <= 255 }
            records.append(latin1 ? 0 : 1)
            records += chunk.key.unicodeScalars.map { UInt8($0.value) }
            records.append(0)
            records += latin1 ? chunk.value.unicodeScalars.map { UInt8($0.value) } : Array(chunk.value.utf8)
            records.append(0)
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer { rgb in
            records.withUnsafeBufferPointer { text in
                tlk_png_encode_rgb(rgb.baseAddress, Int32(image.width), Int32(image.height), text.baseAddress,
                                   Int32(textChunks.count), &out, &size, &message, message.count)
            }
        }
        guard status == 0, let out else { throw ImageError(file: name, reason: .writeFailed("PNG: " + messageText(message))) }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// PNG keywords are 1–79 printable Latin-1 characters without leading, trailing or double spaces;
    /// text cannot hold NUL (the chunk format ends strings with it).
    static func validate(_ chunk: PNGTextChunk, name: String) throws {
        let key = Array(chunk.key.unicodeScalars)
        guard (1...79).contains(key.count) else {
            throw ImageError(file: name, reason: .invalidTextChunk("keyword '\(chunk.key)' must have 1 to 79 characters"))
        }
        let printable = key.allSatisfy { (32...126).contains($0.value) || (161...255).contains($0.value) }
        guard printable, key.first != " ", key.last != " ", !chunk.key.contains("  ") else {
            throw ImageError(file: name, reason: .invalidTextChunk("keyword '\(chunk.key)' must be printable Latin-1 without leading, trailing or double spaces"))
        }
        guard !chunk.value.unicodeScalars.contains("\0") else {
            throw ImageError(file: name, reason: .invalidTextChunk("the text of '\(chunk.key)' contains NUL"))
        }
    }
}
