import Foundation

/// One result slot per index, filled from `DispatchQueue.concurrentPerform` iterations and read in
/// index order afterwards, so parallel work keeps a deterministic output order.
final class ConcurrentSlots<Value>: @unchecked Sendable {
    private(set) var values: [Value?]
    private let lock = NSLock()

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) {
        lock.lock()
        values[index] = value
        lock.unlock()
    }
}
