import Foundation
import SafeTensors

/// Compresses tensors on worker threads while the calling thread takes the results in order, so the
/// catalog's inserts (one thread, inside the write transaction) overlap with compression instead of
/// waiting for all of it.
///
/// Each worker keeps its own byte-plane scratch; compressed bytes go into a small pool of reused
/// output buffers, which also bounds how far the workers run ahead of the consumer. Follow-up tasks
/// (the whole-file hashes of an add) fill the workers' idle time: a worker that finds every output
/// buffer in use runs one instead of waiting, so the inserts start at once and nothing waits for
/// the hashes at the end.
final class CompressionPipeline: @unchecked Sendable {
    /// A tensor to compress: its raw bytes (mapped from the file being added), element type, and the
    /// stored tensors it may be encoded against (`DeltaReference`): their hashes and raw bytes.
    struct Job {
        let bytes: UnsafeRawBufferPointer
        let dtype: DType
        var references: [(sha256: String, bytes: UnsafeRawBufferPointer)] = []
    }

    private struct Slot {
        var done = false
        var codec = Codec.raw
        var reference: String?
        var size = 0
        var buffer: ReusableBuffer?
        var error: Error?
    }

    private let jobs: [Job]
    private let tasks: [@Sendable () -> Void]
    private let level: Int
    /// Threads that compress (the others only run tasks).
    private let workers: Int
    private let threads: Int
    private var slots: [Slot]
    private var next = 0
    private var nextTask = 0
    /// A job failed: take no more (every job before it is already taken and will finish).
    private var failed = false
    /// The consumer is done (or gave up): results are no longer wanted.
    private var stopped = false
    private let condition = NSCondition()
    private let outputs: BufferPool
    private let finished = DispatchGroup()

    /// Up to `cores` threads compress `jobs`, then run `tasks` (each once, on some thread). A tensor
    /// whose byte planes reach `Codec.multithreadThreshold` is split across zstd's own threads
    /// instead: when there is one, a single worker compresses, so that memory stays at about three
    /// times the largest tensor (its byte planes and two outputs), as when big tensors were
    /// compressed one at a time.
    init(jobs: [Job], level: Int, cores: Int, then tasks: [@Sendable () -> Void] = []) {
        self.jobs = jobs
        self.tasks = tasks
        self.level = level
        let big = jobs.contains { Codec.usesThreads(byteCount: $0.bytes.count, dtype: $0.dtype) }
        workers = min(big ? 1 : max(1, cores), jobs.count)
        threads = max(workers, min(max(1, cores), tasks.count))
        slots = Array(repeating: Slot(), count: jobs.count)
        outputs = BufferPool(count: big ? 2 : workers + 2)
    }

    /// Calls `body` with each job's index, codec, reference (the hash of the blob it was encoded
    /// against, if any) and stored bytes, in job order, on the calling thread. The bytes are valid
    /// during the call only. Stops at the first error (of a worker or of `body`). Returns once every
    /// task has run too.
    func forEachInOrder(_ body: (Int, Codec, String?, UnsafeRawBufferPointer) throws -> Void) throws {
        // Threads of their own: blocked workers must not hold back a shared pool's other work.
        for index in 0..<threads {
            finished.enter()
            let thread = Thread { [self] in
                if index < workers { compress() }
                while let task = takeTask() { task() }
                finished.leave()
            }
            thread.start()
        }
        defer {
            // Stop the workers: results not taken go back to the pool (a worker waiting for an output
            // buffer then gets one, sees the stop and ends). Tasks still run: they are awaited below.
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
            try withExtendedLifetime(buffer) { try body(k, slot.codec, slot.reference, UnsafeRawBufferPointer(buffer.prefix(slot.size))) }
        }
    }

    private func takeTask() -> (@Sendable () -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        guard nextTask < tasks.count else { return nil }
        nextTask += 1
        return tasks[nextTask - 1]
    }

    private func compress() {
        let scratch = ReusableBuffer()
        // Where a delta encoding is tried; it trades places with the output when it is smaller.
        var trial = ReusableBuffer()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        while true {
            // Every output in use (the consumer is behind): run a task rather than wait, if one is left.
            var taken = outputs.tryTake()
            if taken == nil, let task = takeTask() {
                task()
                continue
            }
            let output = taken ?? outputs.take()
            taken = nil
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
            // The buffer holding the best encoding so far (the pool's count of buffers stays the same).
            var best = output
            do {
                let job = jobs[k]
                let threads = Codec.usesThreads(byteCount: job.bytes.count, dtype: job.dtype) && cores > 1 ? cores : 0
                // Plain, and against each reference worth trying; the smallest stays in `best`.
                slot.size = Int.max
                let references = job.references.map(\.bytes)
                for choice in try Codec.encodingsWorthTrying(job.bytes, references: references, dtype: job.dtype, level: level,
                                                             output: trial, scratch: scratch) {
                    let result: (Codec, Int)?
                    if let r = choice {
                        result = try Codec.encodeDelta(job.bytes, reference: references[r], dtype: job.dtype, level: level,
                                                       workers: threads, into: trial, scratch: scratch)
                    } else {
                        result = try Codec.encode(job.bytes, dtype: job.dtype, level: level, workers: threads, into: trial, scratch: scratch)
                    }
                    guard let (codec, size) = result, size < slot.size else { continue }
                    (slot.codec, slot.size, slot.reference) = (codec, size, choice.map { job.references[$0].sha256 })
                    (best, trial) = (trial, best)
                }
                if slot.size == Int.max {
                    // The estimate chose a delta that did not compress after all.
                    (slot.codec, slot.size) = try Codec.encode(job.bytes, dtype: job.dtype, level: level, workers: threads,
                                                              into: best, scratch: scratch)
                }
                slot.buffer = best
            } catch {
                slot.error = error
                outputs.give(best)
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
