import Foundation
import JSONOutput
import Training

/// Training progress: a bar on a terminal (step, moving-average loss, seconds per step, ETA), one line per
/// checkpoint otherwise, JSON lines on stdout with `--json` (human text then stays on stderr).
final class TrainingProgress {
    let total: Int
    let json: Bool
    let isTerminal: Bool
    private var average: Double?
    private var timing = StepTiming()
    private var barShown = false

    init(total: Int, json: Bool) {
        self.total = total
        self.json = json
        isTerminal = !json && isatty(2) != 0
    }

    /// Mean seconds per step over the recent steps (the first step, which warms caches, excluded when possible).
    var secondsPerStep: Double? { timing.secondsPerStep }

    func step(_ step: Int, loss: Double, seconds: Double) {
        timing.add(seconds)
        average = average.map { 0.9 * $0 + 0.1 * loss } ?? loss
        if json {
            emit([("event", .string("step")), ("step", .int(step)), ("total", .int(total)), ("loss", .double(loss)),
                  ("loss_average", .double(average!)), ("seconds", .double(seconds))])
        } else if isTerminal {
            let width = 24, filled = width * step / max(total, 1)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let perStep = secondsPerStep ?? seconds
            let line = String(format: "step %d/%d [%@] loss %.4f  %.2f s/step  ETA %@", step, total, bar, average!, perStep,
                              Self.duration(perStep * Double(total - step)))
            Console.writeAll(2, "\r\u{1B}[2K" + line)
            barShown = true
        }
    }

    func checkpoint(_ step: Int, path: String, catalogReference: String?) {
        if json {
            var event: [(String, JSONValue)] = [("event", .string("checkpoint")), ("step", .int(step)), ("path", .string(path)),
                                                ("loss_average", average.map { .double($0) } ?? .null)]
            if let catalogReference { event.append(("catalog", .string(catalogReference))) }
            emit(event)
            return
        }
        finishLine()
        var line = "checkpoint \(step)/\(total): \(path)"
        if let average { line += String(format: "  loss %.4f", average) }
        if let perStep = secondsPerStep { line += String(format: "  %.2f s/step", perStep) }
        if let catalogReference { line += "  catalog \(catalogReference)" }
        Console.error(line)
    }

    /// A human note between bar updates.
    func message(_ text: String) {
        if json { return Console.error(text) }
        finishLine()
        Console.error(text)
    }

    func done(path: String, steps: Int) {
        if json { emit([("event", .string("done")), ("steps", .int(steps)), ("path", .string(path))]) }
        Console.error("trained \(steps) steps: \(path)")
    }

    /// Ends the terminal bar's line so the next message starts on its own line.
    func finishLine() {
        if barShown { Console.writeAll(2, "\n") }
        barShown = false
    }

    private func emit(_ members: [(String, JSONValue)]) { Console.out(Self.line(members)) }

    /// One JSON line: members sorted by key and slashes escaped, as the lines have always been written.
    /// (The loss and times are finite: the trainer stops on a non-finite loss before reporting the step.)
    static func line(_ members: [(String, JSONValue)]) -> String {
        JSONValue.object(members.sorted { $0.0 < $1.0 }).serialized(escapingSlashes: true)
    }

    static func duration(_ seconds: Double) -> String {
        // An estimate, not a value to trap on (Int of infinity or NaN would).
        guard seconds.isFinite, abs(seconds) < 1e12 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
