import Foundation
import Testing
@testable import Engine

struct OperationProfileTests {
    /// Nested operations: each keeps its own time only, so the parts never add up to more than the whole.
    @Test func nestedOperationsSplitTheirTime() {
        let began = ProfileClock.now()
        let outer = ProfileClock.enter()
        busyWait(0.002)
        let inner = ProfileClock.enter()
        busyWait(0.002)
        let innerOwn = ProfileClock.leave(inner)
        busyWait(0.002)
        let outerOwn = ProfileClock.leave(outer)
        let whole = ProfileClock.now() - began
        #expect(innerOwn > 0 && outerOwn > 0)
        #expect(innerOwn + outerOwn <= whole + 1e-9, "\(innerOwn) + \(outerOwn) > \(whole)")
        // The outer operation's own time excludes the inner one's.
        #expect(outerOwn < whole - innerOwn + 1e-9)
    }

    /// Rows sorted by time, throughput from the recorded flops, and the remainder of the total outside.
    @Test func reportAddsUpToTheTotal() {
        let recorder = ProfileRecorder()
        recorder.record("linear.forward", flops: 3_000_000_000, seconds: 1.5)
        recorder.record("linear.forward", flops: 1_000_000_000, seconds: 0.5)
        recorder.record("groupnorm.forward", flops: 0, seconds: 0.2)
        let lines = recorder.report(total: 4).split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines[1].hasPrefix("linear.forward") && lines[1].contains("       2      2.000   50.0 %") && lines[1].hasSuffix("4.0       2.0"), "\(lines[1])")
        #expect(lines[2].hasPrefix("groupnorm.forward") && lines[2].contains("0.200    5.0 %"), "\(lines[2])")
        #expect(lines[3].hasPrefix("(outside operations)") && lines[3].contains("1.800   45.0 %"), "\(lines[3])")
        #expect(lines[4].hasPrefix("total") && lines[4].contains("4.000  100.0 %"), "\(lines[4])")
    }

    private func busyWait(_ seconds: Double) {
        let end = ProfileClock.now() + seconds
        while ProfileClock.now() < end {}
    }
}
