import Foundation
import JSONOutput
import Testing
@testable import TLKitCommands

/// `train --json` lines keep the bytes they had when Foundation's JSONSerialization wrote them (sorted keys,
/// `\/`, `\b`, `\f`, numbers in Swift's shortest form without a trailing `.0`), now that JSONOutput writes them.
@Suite struct TrainingProgressTests {
    static func foundationLine(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test(arguments: [0.0, 1, 3, 0.1234567, 1e-7, 2.5e-5, 0.30000000000000004, Double(Float(0.1)), 123456789.123, 1e20, 5e-324, 86400.25])
    func stepLineMatchesFoundation(value: Double) throws {
        let ours = TrainingProgress.line([("event", .string("step")), ("step", .int(7)), ("total", .int(100)), ("loss", .double(value)),
                                          ("loss_average", .double(value / 3)), ("seconds", .double(value * 2))])
        let theirs = try Self.foundationLine(["event": "step", "step": 7, "total": 100, "loss": value, "loss_average": value / 3, "seconds": value * 2])
        #expect(ours == theirs)
    }

    @Test func checkpointLineMatchesFoundation() throws {
        let path = "runs/sks dog/ü\u{8}\u{C}\u{1}\t\"\\/checkpoint-2"
        let ours = TrainingProgress.line([("event", .string("checkpoint")), ("step", .int(2)), ("path", .string(path)),
                                          ("loss_average", .null), ("catalog", .string("sks-dog@2"))])
        let theirs = try Self.foundationLine(["event": "checkpoint", "step": 2, "path": path, "loss_average": NSNull(), "catalog": "sks-dog@2"])
        #expect(ours == theirs)
        #expect(ours.contains(#"runs\/sks dog\/"#))
    }
}
