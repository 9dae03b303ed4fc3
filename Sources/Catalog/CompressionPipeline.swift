import Foundation
import SafeTensors

/// Compresses tensors on worker threads while the calling thread takes the results in order, so the
/// catalog's inserts (one thread, inside the write transaction) overlap with compression instead of
/// waiting for all of it.
///
/// Each worker keeps its own byte-plane scratch; compressed bytes go into a small pool of reused
/// output buffers, which also bounds how far the workers run ahead of the consumer.
final class CompressionPipeline: @unchecked Sendable {
    /// A tensor to compress: its raw bytes (mapped from the file being added) and element type.
    struct Job {
        let bytes: UnsafeRawBufferPointer
        let dtype: DType
    }

    private struct Slot {
        var done = false
        var codec = Codec.raw
        var size = 0
        var buffer: ReusableBuffer?
        var error: Error?
    }

    private let jobs: [Job]
    private let level: Int
    private let workers: Int
    private var slots: [Slot]
    private var next = 0
    /// A job failed: take no more (every job before it is already taken and will finish).
    private var failed = false
    /// The consumer is done (or gave up): results are no longer wanted.
    private var stopped = false
    private let condition = NSCondition()
    private let outputs: BufferPool
    private let finished = DispatchGroup()

    /// Up to `cores` threads compress `jobs`. A tensor whose byte planes reach
    /// `Codec.multithreadThreshold` is split across zstd's own threads instead: when there is one,
    /// a single worker runs, so that memory stays at about three times the largest tensor (its byte
    /// planes and two outputs), as when big tensors were compressed one at a time.
    init(jobs: [Job], level: Int, cores: Int) {
        self.jobs = jobs
        self.level = level
        let big = jobs.contains { Codec.usesThreads(byteCount: $0.bytes.count, dtype: $0.dtype) }
        workers = big ? 1 : max(1, cores)
        slots = Array(repeating: Slot(), count: jobs.count)
        outputs = BufferPool(count: big ? 2 : workers + 2)
    }

    /// Calls `body` with each job's index, codec and stored bytes, in job order, on the calling thread.
    /// The bytes are valid during the call only. Stops at the first error (of a worker or of `body`).
    func forEachInOrder(_ body: (Int, Codec, UnsafeRawBufferPointer) throws -> Void) throws {
        for _ in 0..<min(workers, jobs.count) {
            DispatchQueue.global(qos: .userInitiated).async(group: finished) { self.work() }
        }
        defer {
            // Stop the workers: results not taken go back to the pool (a worker waiting for an output
            // buffer then gets one, sees the stop and ends).
            condition.lock()
            stopped = true
            let unused = slots.indices.compactMap { k -> ReusableBuffer? in
                defer { slots[k].buffer = nil }
                return slots[k].buffer
            }
            condition.unlock()
            unused.forEach(outputs.give)
            finished.wait()
        }
        for k in 0..<jobs.count {
            condition.lock()
            while !slots[k].done { condition.wait() }
            let slot = slots[k]
            slots[k].buffer = nil
            condition.unlock()
            if let error = slot.error { throw error }
            guard let buffer = slot.buffer else { throw CatalogError.codec("compression of tensor \(k) left no result") }
            defer { outputs.give(buffer) }
            try withExtendedLifetime(buffer) { try body(k, slot.codec, UnsafeRawBufferPointer(buffer.prefix(slot.size))) }
        }
    }

    private func work() {
        let scratch = ReusableBuffer()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        while true {
            let output = outputs.take()
            condition.lock()
            guard !failed && !stopped && next < jobs.count else {
                condition.unlock()
                outputs.give(output)
                return
            }
            let k = next
            next += 1
            condition.unlock()
            var slot = Slot(done: true)
            do {
                let job = jobs[k]
                let threads = Codec.usesThreads(byteCount: job.bytes.count, dtype: job.dtype) && cores > 1 ? cores : 0
                (slot.codec, slot.size) = try Codec.encode(job.bytes, dtype: job.dtype, level: level, workers: threads,
                                                          into: output, scratch: scratch)
                slot.buffer = output
            } catch {
                slot.error = error
                outputs.give(output)
            }
            condition.lock()
            let unwanted = stopped ? slot.buffer : nil
            if unwanted != nil { slot.buffer = nil }
            slots[k] = slot
            if slot.error != nil { failed = true }
            condition.broadcast()
            condition.unlock()
            if let unwanted { outputs.give(unwanted) }
        }
    }
}
