/// A shaped view of a contiguous, row-major buffer.
///
/// Tensors have reference semantics: copies (and `reshaped`, `batch(_:)`) share
/// the buffer, like pointers in a C trainer. There is no autograd graph — each op
/// has explicit `forward` and `backward` functions; backward functions
/// accumulate (`+=`) into gradient tensors, so callers zero them once per step.
public struct Tensor<T: Scalar>: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    @usableFromInline let storage: TensorStorage<T>
    @usableFromInline let offset: Int

    /// Zero-filled tensor of the given shape.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = TensorStorage(count: count)
        self.offset = 0
    }

    /// Tensor whose elements are not set: for the output of an operation that writes every element (a
    /// reused buffer is not zero-filled first, which costs a memory pass per activation).
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = TensorStorage(count: count, zeroed: false)
        self.offset = 0
    }

    /// Tensor holding `values` (row-major) with the given shape.
    public init(shape: [Int], values: [T]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// Tensor filled by `f(i)` for each flat index i.
    public init(shape: [Int], _ f: (Int) -> T) {
        self.init(zeros: shape)
        for i in 0..<count { data[i] = f(i) }
    }

    init(shape: [Int], storage: TensorStorage<T>, offset: Int) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = storage
        self.offset = offset
    }

    /// Pointer to the first element; valid while any tensor sharing the buffer lives.
    @inlinable public var data: UnsafeMutablePointer<T> { storage.base + offset }

    public var rank: Int { shape.count }

    @inlinable public subscript(i: Int) -> T {
        get { data[i] }
        nonmutating set { data[i] = newValue }
    }

    /// The elements as an array (for tests and small tensors).
    public var array: [T] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Same buffer, new shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage, offset: offset)
    }

    /// Item `i` along the first dimension, sharing the buffer.
    public func batch(_ i: Int) -> Tensor {
        precondition(rank >= 1 && i >= 0 && i < shape[0], "batch \(i) out of range for \(shape)")
        let inner = Array(shape.dropFirst())
        return Tensor(shape: inner, storage: storage, offset: offset + i * inner.reduce(1, *))
    }

    public func fill(_ value: T) { data.update(repeating: value, count: count) }
    public func zero() { fill(0) }

    /// Element-wise copy of `other` (same element count) into self.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// A new tensor with its own buffer holding the same values.
    public func clone() -> Tensor {
        let t = Tensor(zeros: shape)
        t.copy(from: self)
        return t
    }

    /// Converted element type (Float ↔ Double), new buffer.
    public func converted<U: Scalar>(to: U.Type) -> Tensor<U> {
        let t = Tensor<U>(zeros: shape)
        for i in 0..<count { t.data[i] = U(data[i]) }
        return t
    }
}

/// Owner of a 64-byte aligned, zero-filled (unless asked otherwise) allocation (cache line / AVX-512 register width); large ones come
/// from `TensorMemory`, which reuses them.
public final class TensorStorage<T: Scalar>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<T>
    let count: Int
    private let capacity: Int

    init(count: Int, zeroed: Bool = true) {
        self.count = count
        let memory = TensorMemory.allocate(max(count, 1) * MemoryLayout<T>.stride, zeroed: zeroed)
        capacity = memory.capacity
        base = memory.pointer.bindMemory(to: T.self, capacity: max(count, 1))
    }

    deinit { TensorMemory.release(UnsafeMutableRawPointer(base), capacity: capacity) }
}

/// Precondition that `t` has exactly `shape` (with a readable message).
@inline(__always)
func expectShape<T>(_ t: Tensor<T>, _ shape: [Int], _ name: @autoclosure () -> String) {
    precondition(t.shape == shape, "\(name()): expected shape \(shape), got \(t.shape)")
}
