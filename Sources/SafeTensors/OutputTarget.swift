#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an output path leads to, decided once before anything is written, as `cp`, `sed -i` and
/// `zstd -o` decide it: a new or regular file is replaced atomically (temporary file and rename) in
/// its own folder, a symlink is followed and its final target replaced, a character device, FIFO or
/// socket is written through, a directory is refused, and `-` is standard output.
public enum OutputTarget: Equatable, Sendable {
    case standardOutput
    /// The real path of the file to replace (symlinks resolved; it may not exist yet).
    case file(String)
    /// A device or FIFO, opened and written in order; it cannot be rewritten or renamed over.
    case stream(String)

    public static func resolve(_ destination: String) throws -> OutputTarget {
        if destination == "-" { return .standardOutput }
        var path = destination
        for _ in 0..<40 {
            var st = stat()
            if lstat(path, &st) != 0 {
                if errno == ENOENT { return .file(path) }
                throw SafeTensorsError(file: destination, reason: .writeFailed(errnoText()))
            }
            switch st.st_mode & S_IFMT {
            case S_IFLNK: path = try linkTarget(path, destination: destination)
            case S_IFDIR: throw SafeTensorsError(file: destination, reason: .writeFailed("is a directory; give a file name"))
            case S_IFREG: return .file(path)
            default: return .stream(path)
            }
        }
        throw SafeTensorsError(file: destination, reason: .writeFailed("too many levels of symbolic links"))
    }

    /// Whether the output can be rewritten in place after it was written (a header completed at the end).
    public var isRewritable: Bool {
        if case .file = self { return true }
        return false
    }

    /// The path a symlink points to, relative targets taken from the link's own folder.
    private static func linkTarget(_ link: String, destination: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(link, &buffer, buffer.count - 1)
        guard n >= 0 else { throw SafeTensorsError(file: destination, reason: .writeFailed("readlink: \(errnoText())")) }
        let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.hasPrefix("/") ? target : "\(AtomicOutput.folder(of: link))/\(target)"
    }
}
