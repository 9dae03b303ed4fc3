#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output written to a temporary file in the target's folder and renamed into place on `commit()`,
/// so an interrupted command never leaves a truncated file. `-` writes to standard output directly, and
/// so does a device or FIFO (see `OutputTarget`); a symlink's target is what gets replaced.
public final class AtomicOutput {
    public let destination: String
    private let temporaryPath: String?
    /// The file the temporary file is renamed to (the destination, symlinks resolved).
    private let finalPath: String
    private let ownsDescriptor: Bool
    private var fd: Int32
    private var done = false
    private var written = 0
    private var writebackStart = 0
    private let inputsMark = MappedInputs.mark()

    /// Whether bytes already written can be rewritten (`overwrite`): only a file being replaced.
    public var isRewritable: Bool { temporaryPath != nil }

    public init(_ destination: String) throws {
        self.destination = destination
        switch try OutputTarget.resolve(destination) {
        case .standardOutput:
            (temporaryPath, finalPath, fd, ownsDescriptor) = (nil, destination, 1, false)
        case let .stream(path):
            let opened = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard opened >= 0 else { throw SafeTensorsError(file: destination, reason: .writeFailed(errnoText())) }
            (temporaryPath, finalPath, fd, ownsDescriptor) = (nil, path, opened, true)
        case let .file(path):
            let folder = AtomicOutput.folder(of: path)
            var st = stat()
            guard stat(folder, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw SafeTensorsError(file: destination, reason: .writeFailed("folder '\(folder)' does not exist"))
            }
            let name = path.split(separator: "/").last.map(String.init) ?? path
            AtomicOutput.removeStale(folder: folder, name: name)
            // The process id in the name lets a later write tell a dead process's leftover from a live one's.
            var template = Array("\(folder)/.\(name).tmp-\(getpid())-XXXXXX".utf8CString)
            let opened = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard opened >= 0 else {
                throw SafeTensorsError(file: destination, reason: .writeFailed("cannot create a temporary file in '\(folder)': \(errnoText())"))
            }
            let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            (temporaryPath, finalPath, fd, ownsDescriptor) = (temporary, path, opened, true)
            _ = fchmod(fd, 0o644)
            AtomicOutput.register(temporary)
        }
    }

    deinit { if !done { abandon() } }

    /// Removes `.NAME.tmp-PID-*` files in `folder` whose process no longer exists (left by `kill -9` or
    /// a crash, which no handler sees). Files of live processes, and names without a process id, stay.
    static func removeStale(folder: String, name: String) {
        guard let dir = opendir(folder) else { return }
        defer { closedir(dir) }
        let prefix = ".\(name).tmp-"
        while let entry = readdir(dir) {
            let file = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard file.hasPrefix(prefix) else { continue }
            let rest = file.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(folder)/\(file)") }
        }
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, min(bytes.count - offset, 1 << 26))
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(file: destination, reason: .writeFailed(errnoText()))
            }
            offset += n
        }
        written += bytes.count
        startWriteback()
    }

    /// Asks the kernel to start writing what has accumulated (without waiting), so the disk works while
    /// the rest is produced and the `fsync` of `commit()` only waits for the tail.
    private func startWriteback() {
        guard temporaryPath != nil, written - writebackStart >= AtomicOutput.writebackChunk, let syncFileRange else { return }
        _ = syncFileRange(fd, Int64(writebackStart), Int64(written - writebackStart), 2 /* SYNC_FILE_RANGE_WRITE */)
        writebackStart = written
    }
    private static let writebackChunk = 32 << 20

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Overwrites bytes already written (a header whose final values were known only at the end).
    public func overwrite(_ bytes: [UInt8], at offset: Int) throws {
        guard isRewritable else {
            throw SafeTensorsError(file: destination, reason: .writerMisuse("cannot rewrite standard output, a device or a FIFO"))
        }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(file: destination, reason: .writeFailed(errnoText()))
            }
            done += n
        }
    }

    /// Flushes to disk and renames the temporary file over the destination, unless an input changed
    /// while it was read (its bytes may then be wrong).
    public func commit() throws {
        guard !done else { return }
        do { try MappedInputs.check(since: inputsMark) } catch { abandon(); throw error }
        guard let temporaryPath else {
            done = true
            if ownsDescriptor, close(fd) != 0 { throw SafeTensorsError(file: destination, reason: .writeFailed(errnoText())) }
            return
        }
        if fsync(fd) != 0 {
            let why = errnoText()
            abandon()
            throw SafeTensorsError(file: destination, reason: .writeFailed("fsync: \(why)"))
        }
        close(fd)
        if rename(temporaryPath, finalPath) != 0 {
            let why = errnoText()
            unlink(temporaryPath)
            AtomicOutput.unregister(temporaryPath)
            done = true
            throw SafeTensorsError(file: destination, reason: .writeFailed("rename: \(why)"))
        }
        AtomicOutput.unregister(temporaryPath)
        done = true
    }

    /// Removes the temporary file; the destination is untouched.
    public func abandon() {
        guard !done else { return }
        done = true
        if ownsDescriptor { close(fd) }
        if let temporaryPath {
            unlink(temporaryPath)
            AtomicOutput.unregister(temporaryPath)
        }
    }

    // Temporary files still open when a signal ends the process are removed by `removeAbandoned()`.
    nonisolated(unsafe) private static var pending = Set<String>()
    private static let lock = Lock()

    private static func register(_ path: String) { lock.withLock { _ = pending.insert(path) } }
    private static func unregister(_ path: String) { lock.withLock { _ = pending.remove(path) } }

    /// Removes every temporary file not yet committed (call from a signal or exit path).
    public static func removeAbandoned() {
        lock.withLock { for path in pending { unlink(path) }; pending.removeAll() }
    }
}

/// A pthread mutex, for the few shared tables the libraries keep.
public final class Lock: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    public init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// Linux's `sync_file_range`, looked up at run time because the C library module does not export it
/// (it is a GNU extension); nil where it does not exist, and writeback is then left to `fsync`.
private typealias SyncFileRange = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
#if os(Linux)
private let syncFileRange: SyncFileRange? = dlsym(nil, "sync_file_range").map { unsafeBitCast($0, to: SyncFileRange.self) }
#else
private let syncFileRange: SyncFileRange? = nil
#endif
