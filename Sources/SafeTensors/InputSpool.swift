#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Copies an input that cannot be mapped (standard input, a pipe, a FIFO, process substitution, a
/// character device) into an unlinked temporary file, so it is read once, in full, and then mapped
/// like any file: memory stays at the page cache's discretion instead of the input's size twice over,
/// and nothing is left behind however the process ends.
enum InputSpool {
    /// A descriptor of the spooled copy, positioned anywhere (it is read with `pread` and `mmap`).
    static func spool(_ source: Int32, name: String) throws -> Int32 {
        let folder = temporaryFolder()
        var template = Array("\(folder)/.tlkit-input-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw SafeTensorsError(file: name, reason: .cannotOpen("cannot create a temporary file in '\(folder)' to hold it: \(errnoText())"))
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        do {
            try copy(from: source, to: fd, name: name, folder: folder)
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    private static func copy(from source: Int32, to fd: Int32, name: String, folder: String) throws {
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(source, buffer, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(file: name, reason: .cannotOpen(errnoText()))
            }
            if n == 0 { return }
            var done = 0
            while done < n {
                let w = write(fd, buffer + done, n - done)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw SafeTensorsError(file: name, reason: .cannotOpen("cannot hold it in a temporary file in '\(folder)': \(errnoText())"))
                }
                done += w
            }
        }
    }

    private static func temporaryFolder() -> String {
        if let value = getenv("TMPDIR"), case let folder = String(cString: value), !folder.isEmpty { return folder }
        return "/tmp"
    }
}
