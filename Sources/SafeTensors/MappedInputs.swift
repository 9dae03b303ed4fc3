import CMappedGuard
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The inputs this process has mapped, and whether any of them changed while it read them.
///
/// Another program truncating a mapped file makes the vanished pages read as zeros (see CMappedGuard)
/// instead of crashing the process; the bytes read are then wrong, so every output is checked here
/// before it is committed, and a failing command reports the changed file rather than whatever the
/// zeros led to. A file is also "changed" when its size differs from the size mapped: the kernel
/// reports a vanished page to `write(2)` as EFAULT, without a signal.
public enum MappedInputs {
    struct Entry {
        let path: String
        let fd: Int32
        let length: Int
        let slot: Int32
    }

    nonisolated(unsafe) private static var open: [ObjectIdentifier: Entry] = [:]
    /// Inputs closed after they changed, with the generation current when they were closed.
    nonisolated(unsafe) private static var changedAfterClose: [(path: String, generation: Int)] = []
    nonisolated(unsafe) private static var generation = 0
    private static let lock = Lock()

    /// A point in time for `check(since:)`: an output takes one when it starts, so an input that was
    /// closed before then (and cannot have fed it) does not fail it.
    public static func mark() -> Int {
        lock.withLock { generation += 1; return generation }
    }

    static func register(_ owner: AnyObject, path: String, fd: Int32, base: UnsafeRawPointer, length: Int) {
        let slot = tl_guard_register(base, length)
        lock.withLock { open[ObjectIdentifier(owner)] = Entry(path: path, fd: fd, length: length, slot: slot) }
    }

    /// Call before unmapping; a change seen until then is still reported by `check()`.
    static func unregister(_ owner: AnyObject) {
        lock.withLock {
            guard let entry = open.removeValue(forKey: ObjectIdentifier(owner)) else { return }
            let faulted = tl_guard_unregister(entry.slot) != 0
            if faulted || !sizeMatches(entry) { changedAfterClose.append((entry.path, generation)) }
            close(entry.fd)
        }
    }

    /// Whether the input `owner` mapped is intact so far.
    static func isIntact(_ owner: AnyObject) -> Bool {
        lock.withLock { open[ObjectIdentifier(owner)].map(isIntact) ?? true }
    }

    /// The first input that changed while being read: one still open, or one closed since `mark`.
    public static func firstChanged(since mark: Int = 0) -> String? {
        lock.withLock {
            changedAfterClose.first { $0.generation >= mark }?.path ?? open.values.first { !isIntact($0) }?.path
        }
    }

    /// Throws `changedWhileReading` for the first input that changed since `mark`; outputs call it
    /// before committing.
    public static func check(since mark: Int = 0) throws {
        if let path = firstChanged(since: mark) { throw SafeTensorsError(file: path, reason: .changedWhileReading) }
    }

    /// The error a failed command should report: a changed input explains any other failure.
    public static func explain(_ error: any Error) -> any Error {
        firstChanged().map { SafeTensorsError(file: $0, reason: .changedWhileReading) } ?? error
    }

    private static func isIntact(_ entry: Entry) -> Bool {
        tl_guard_faulted(entry.slot) == 0 && sizeMatches(entry)
    }

    private static func sizeMatches(_ entry: Entry) -> Bool {
        var st = stat()
        return fstat(entry.fd, &st) == 0 && Int(st.st_size) == entry.length
    }
}
