import Foundation

/// Wall time, calls and arithmetic per engine operation, collected only when the environment variable
/// `TLKIT_PROFILE` is set (benchmarks use it to show where a step's time goes; otherwise the cost is one
/// branch per operation). Operations nest — an adapter inside a projection — so each records its own
/// time less that of the profiled operations it calls, and the rows add up to the profiled total.
///
/// Usage, at the top of an operation: `let profiled = ProfiledOperation("conv2d.forward", flops: …)`
/// then `defer { profiled.end() }`; flops count multiplications and additions separately.
public enum OperationProfile {
    public static let isEnabled = getenv("TLKIT_PROFILE") != nil

    /// Forgets what was recorded (after a warm-up step) and restarts the total.
    public static func reset() { recorder.reset() }

    /// One row per operation, slowest first, then the rest of `total` seconds (default: the time since
    /// the last reset) as time outside the operations.
    public static func report(total: Double? = nil) -> String { recorder.report(total: total) }

    static let recorder = ProfileRecorder()
}

/// One running operation's profile entry; inert (and its flops never computed) when profiling is off.
public struct ProfiledOperation {
    private let name: StaticString
    private let flops: Int
    private let frame: ProfileClock.Frame?

    @inline(__always)
    public init(_ name: StaticString, flops: @autoclosure () -> Int = 0) {
        self.name = name
        if OperationProfile.isEnabled {
            self.flops = flops()
            frame = ProfileClock.enter()
        } else {
            self.flops = 0
            frame = nil
        }
    }

    @inline(__always)
    public func end() {
        guard let frame else { return }
        OperationProfile.recorder.record(name.description, flops: flops, seconds: ProfileClock.leave(frame))
    }
}

struct ProfileRow {
    var calls = 0
    var seconds = 0.0
    var flops = 0.0
}

final class ProfileRecorder: @unchecked Sendable {
    private var rows: [String: ProfileRow] = [:]
    private var since = ProfileClock.now()
    private let lock = NSLock()

    func record(_ name: String, flops: Int, seconds: Double) {
        lock.withLock {
            rows[name, default: ProfileRow()].calls += 1
            rows[name, default: ProfileRow()].seconds += seconds
            rows[name, default: ProfileRow()].flops += Double(flops)
        }
    }

    func reset() { lock.withLock { rows = [:]; since = ProfileClock.now() } }

    func report(total given: Double?) -> String {
        lock.withLock {
            let total = given ?? ProfileClock.now() - since
            let inside = rows.values.reduce(0) { $0 + $1.seconds }
            var lines = ["operation                       calls    seconds   share     GFLOP   GFLOP/s"]
            func line(_ name: String, _ row: ProfileRow) -> String {
                let calls = row.calls > 0 ? String(row.calls) : ""
                let share = 100 * row.seconds / max(total, 1e-9)
                let arithmetic = row.flops > 0 ? String(format: "%10.1f%10.1f", row.flops / 1e9, row.flops / 1e9 / max(row.seconds, 1e-9)) : ""
                return name.padding(toLength: 28, withPad: " ", startingAt: 0)
                    + String(repeating: " ", count: max(0, 9 - calls.count)) + calls
                    + String(format: "%11.3f%7.1f %%", row.seconds, share) + arithmetic
            }
            for (name, row) in rows.sorted(by: { $0.value.seconds > $1.value.seconds }) { lines.append(line(name, row)) }
            lines.append(line("(outside operations)", ProfileRow(calls: 0, seconds: total - inside, flops: 0)))
            let flops = rows.values.reduce(0) { $0 + $1.flops }
            lines.append(line("total", ProfileRow(calls: 0, seconds: total, flops: flops)))
            return lines.joined(separator: "\n")
        }
    }
}

/// Per-thread time of nested profiled operations, so a parent can subtract its children's time.
enum ProfileClock {
    struct Frame { let start: Double; let outerChildren: Double }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func enter() -> Frame {
        let slot = childSeconds()
        let frame = Frame(start: now(), outerChildren: slot.pointee)
        slot.pointee = 0
        return frame
    }

    /// The operation's own seconds; its whole time is added to the enclosing operation's children.
    static func leave(_ frame: Frame) -> Double {
        let slot = childSeconds()
        let elapsed = now() - frame.start
        let own = elapsed - slot.pointee
        slot.pointee = frame.outerChildren + elapsed
        return own
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()

    private static func childSeconds() -> UnsafeMutablePointer<Double> {
        if let existing = pthread_getspecific(key) { return existing.assumingMemoryBound(to: Double.self) }
        let slot = malloc(MemoryLayout<Double>.size)!.assumingMemoryBound(to: Double.self)
        slot.pointee = 0
        pthread_setspecific(key, slot)
        return slot
    }
}
