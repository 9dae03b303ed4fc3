import Dispatch
import SafeTensors

/// A raw buffer that grows to the largest size asked of it and is then reused: decoding tensor after
/// tensor into the same memory touches no fresh pages, where a new allocation per tensor would fault
/// in (and zero) every page again.
final class ReusableBuffer: @unchecked Sendable {
    private var memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    deinit { if memory.baseAddress != nil { memory.deallocate() } }

    /// The first `count` bytes, reallocated (contents dropped) when the buffer is smaller. The memory
    /// belongs to this object: keep it alive while the pointer is in use.
    func prefix(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if memory.count < count {
            if memory.baseAddress != nil { memory.deallocate() }
            memory = .allocate(byteCount: count, alignment: 64)
        }
        return UnsafeMutableRawBufferPointer(rebasing: memory[0..<count])
    }
}

/// A fixed set of reusable buffers handed between threads; `take` waits while all are in use, which
/// also bounds how far a producer runs ahead of its consumer.
final class BufferPool: @unchecked Sendable {
    private var free: [ReusableBuffer]
    private let available: DispatchSemaphore
    private let lock = Lock()

    init(count: Int) {
        free = (0..<count).map { _ in ReusableBuffer() }
        available = DispatchSemaphore(value: count)
    }

    func take() -> ReusableBuffer {
        available.wait()
        return lock.withLock { free.removeLast() }
    }

    /// A free buffer, or nil at once when all are in use.
    func tryTake() -> ReusableBuffer? {
        guard available.wait(timeout: .now()) == .success else { return nil }
        return lock.withLock { free.removeLast() }
    }

    func give(_ buffer: ReusableBuffer) {
        lock.withLock { free.append(buffer) }
        available.signal()
    }
}
