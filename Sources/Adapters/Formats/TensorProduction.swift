import BLASThreads
import Foundation
import SafeTensors

/// Produces a write plan's tensors (loading each module's factors, folding, encoding, checking) on
/// several worker threads and hands them over strictly in file order.
///
/// Work items are the runs of consecutive tensors (in file order) that belong to one module, so each
/// module's factors are loaded once per run, as a single producer would. Workers claim items in order
/// and compute them ahead of the writer, but never more than `window` items past the one the writer
/// takes next: memory holds at most `window` modules' encoded tensors waiting, the one module being
/// written, and one module's factors per worker. An item that fails stops at its failing tensor; the
/// writer meets the items in file order, so the first error in file order is the one it throws.
final class TensorProduction: @unchecked Sendable {
    private struct Item {
        let tensors: Range<Int>   // indices into `layout`
        let module: Int
    }

    private let layout: [TensorInfo]
    private let planned: [AdapterWriter.Planned]   // parallel to `layout`
    private let items: [Item]
    private let adapter: Adapter
    private let options: WriteOptions
    let workers: Int
    let window: Int

    private let lock = NSCondition()
    private var claimed = 0      // items handed to workers
    private var taken = 0        // items the writer has taken
    private var done: [Int: [Result<[UInt8], Error>]] = [:]
    private var stopped = false
    /// Writer side, touched only by the consuming thread: the item being handed out tensor by tensor.
    private var current: [Result<[UInt8], Error>] = []
    private var currentNext = 0

    init(layout: [TensorInfo], plan: [AdapterWriter.Planned], adapter: Adapter, options: WriteOptions) {
        let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.spec.name, $0) })
        self.layout = layout
        self.planned = layout.map { byName[$0.name]! }
        var items: [Item] = []
        var start = 0
        for index in planned.indices where index + 1 == planned.count || planned[index + 1].module != planned[index].module {
            items.append(Item(tensors: start..<(index + 1), module: planned[index].module))
            start = index + 1
        }
        self.items = items
        self.adapter = adapter
        self.options = options
        self.workers = ProductionWorkers.count(items: items.count, requested: options.workers)
        self.window = 2 * workers
    }

    /// Runs `body` with the workers started; `body` calls `next()` once per tensor of the layout, in
    /// order. The workers are stopped and joined before this returns, also when `body` throws.
    /// With several workers OpenBLAS runs on one thread meanwhile, so that module-level and BLAS-level
    /// threads do not oversubscribe the cores (the products per module are thin).
    func run<R>(_ body: (TensorProduction) throws -> R) throws -> R {
        let group = DispatchGroup()
        func session() throws -> R {
            for _ in 0..<workers {
                group.enter()
                Thread { [self] in
                    self.work()
                    group.leave()
                }.start()
            }
            defer {
                lock.withLock {
                    stopped = true
                    lock.broadcast()
                }
                group.wait()
            }
            return try body(self)
        }
        return workers > 1 ? try BLASThreads.serial(session) : try session()
    }

    /// The next tensor's bytes in file order (waiting for its item if need be), or the item's error.
    func next() throws -> [UInt8] {
        if currentNext == current.count {
            lock.lock()
            let index = taken
            while done[index] == nil { lock.wait() }
            current = done.removeValue(forKey: index)!
            currentNext = 0
            taken += 1
            lock.broadcast()
            lock.unlock()
        }
        let result = current[currentNext]
        currentNext += 1
        return try result.get()
    }

    private func work() {
        while let index = claim() {
            let item = items[index]
            var results: [Result<[UInt8], Error>] = []
            var cache: (Int, Factors)?
            for t in item.tensors {
                let result = Result { try AdapterWriter.tensorBytes(planned[t], layout[t], adapter, options, &cache) }
                results.append(result)
                if case .failure = result { break }
            }
            lock.withLock {
                done[index] = results
                lock.broadcast()
            }
        }
    }

    /// The next item for a worker, once it lies within the window; nil when all are claimed or the
    /// production was stopped.
    private func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        while !stopped && claimed < items.count && claimed >= taken + window { lock.wait() }
        guard !stopped && claimed < items.count else { return nil }
        claimed += 1
        return claimed - 1
    }
}

/// How many threads produce a write's tensors: the one place that decides it.
enum ProductionWorkers {
    /// Past a few workers the writer's own copy into the file and the SHA-256 of the data are the
    /// bound, and each worker adds a module's factors to memory.
    static let maximum = 4

    /// `requested` (WriteOptions.workers) when given, else one per core up to `maximum`; never more
    /// than there are items, never fewer than one.
    static func count(items: Int, requested: Int?) -> Int {
        let wanted = requested ?? min(ProcessInfo.processInfo.activeProcessorCount, maximum)
        return max(1, min(wanted, items))
    }
}
