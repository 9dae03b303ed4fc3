import SafeTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Holds compressed blobs between compression (outside any transaction) and insertion (inside one).
/// Up to `memoryBudget` bytes stay in memory; the rest goes to an unlinked temporary file that
/// vanishes with the process, so a killed `add` leaves nothing behind.
final class Spool: @unchecked Sendable {
    private enum Place { case memory([UInt8]); case file(offset: Int, count: Int) }
    private var places: [Int: Place] = [:]
    private var inMemory = 0
    private var fd: Int32 = -1
    private var fileEnd = 0
    private let folder: String
    private let memoryBudget: Int
    private let lock = Lock()

    init(folder: String, memoryBudget: Int = 512 << 20) {
        self.folder = folder
        self.memoryBudget = memoryBudget
    }

    deinit { if fd >= 0 { close(fd) } }

    func put(_ key: Int, _ bytes: [UInt8]) throws {
        try lock.withLock {
            if inMemory + bytes.count <= memoryBudget {
                inMemory += bytes.count
                places[key] = .memory(bytes)
                return
            }
            if fd < 0 { try openFile() }
            var done = 0
            try bytes.withUnsafeBytes { raw in
                while done < raw.count {
                    let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(fileEnd + done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw CatalogError.io("temporary spool in \(folder): \(String(cString: strerror(errno)))")
                    }
                    done += n
                }
            }
            places[key] = .file(offset: fileEnd, count: bytes.count)
            fileEnd += bytes.count
        }
    }

    /// Returns the bytes stored under `key`.
    func read(_ key: Int) throws -> [UInt8] {
        try lock.withLock {
            guard let place = places[key] else { throw CatalogError.io("spool: missing blob \(key)") }
            switch place {
            case let .memory(bytes):
                return bytes
            case let .file(offset, count):
                var bytes = [UInt8](repeating: 0, count: count)
                var done = 0
                try bytes.withUnsafeMutableBytes { raw in
                    while done < count {
                        let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset + done))
                        if n <= 0 {
                            if n < 0 && errno == EINTR { continue }
                            throw CatalogError.io("temporary spool in \(folder): short read")
                        }
                        done += n
                    }
                }
                return bytes
            }
        }
    }

    private func openFile() throws {
        var template = Array("\(folder)/.tlkit-spool-XXXXXX".utf8CString)
        let opened = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard opened >= 0 else {
            throw CatalogError.io("cannot create a temporary spool file in \(folder): \(String(cString: strerror(errno)))")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        fd = opened
    }
}
