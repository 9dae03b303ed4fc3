#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading JPEG and PNG files into upright RGB, the way the training pipeline needs them.
public enum ImageFile {
    /// Reads the image at `path`. The format comes from the first bytes, not the extension; alpha is
    /// composited on white; a JPEG's or PNG's EXIF orientation is applied.
    public static func decode(path: String) throws -> DecodedImage {
        try decode(data: try readFile(path), name: path)
    }

    /// Decodes an image held in memory; `name` is what errors call it.
    public static func decode(data: [UInt8], name: String = "<memory>") throws -> DecodedImage {
        switch ImageFormat.sniff(data) {
        case .failure(let reason): throw ImageError(file: name, reason: reason)
        case .success(.jpeg): return try JPEGDecoder.decode(data, name: name)
        case .success(.png): return try PNGDecoder.decode(data, name: name)
        }
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ImageError(file: path, reason: .cannotOpen(String(cString: strerror(errno)))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageError(file: path, reason: .cannotOpen(String(cString: strerror(errno)))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ImageError(file: path, reason: .cannotOpen("not a regular file")) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ImageError(file: path, reason: .cannotOpen(n == 0 ? "the file shrank while reading" : String(cString: strerror(errno))))
            }
            offset += n
        }
        return bytes
    }
}
