#if canImport(Glibc)
import Glibc
#endif

/// What tells an imported file unchanged without reading it: size, modification time and inode, as
/// `stat` reports them. `add --recursive` skips a file whose stamp matches the one recorded when it was
/// imported (the cache lives in the catalog, keyed by host and absolute path).
public struct FileStamp: Equatable, Sendable {
    public let size: Int
    public let mtimeNanoseconds: Int
    public let inode: Int

    public init(size: Int, mtimeNanoseconds: Int, inode: Int) {
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.inode = inode
    }

    /// The stamp of the file at `path` (symbolic links followed), nil when it cannot be stat'ed.
    public static func of(_ path: String) -> FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileStamp(size: Int(info.st_size), mtimeNanoseconds: Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec),
                         inode: Int(bitPattern: UInt(info.st_ino)))
    }
}

/// A file `add --recursive` imported: its stamp then, and the entry it is (or was found identical to).
public struct ImportRecord: Equatable, Sendable {
    public let stamp: FileStamp
    public let reference: Reference

    public init(stamp: FileStamp, reference: Reference) {
        self.stamp = stamp
        self.reference = reference
    }
}

/// One use of a stored tensor by an entry, for `dups`: tensors stored once but used by several entries.
public struct SharedTensorUse: Sendable {
    public let blob: String
    public let rawSize: Int
    public let reference: Reference

    public init(blob: String, rawSize: Int, reference: Reference) {
        self.blob = blob
        self.rawSize = rawSize
        self.reference = reference
    }
}

enum ImportCache {
    /// The bounds of the paths under `folder` (`folder/…`): '0' follows '/' in byte order.
    static func range(under folder: String) -> (low: String, high: String) {
        let trimmed = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        return (trimmed + "/", trimmed + "0")
    }
}
