/// What a `TrainingRun` reports while it runs, in order; the caller prints them (the library never does).
public enum TrainingEvent: Sendable {
    /// A human line: what was loaded, decided or measured.
    case note(String)
    /// Everything is loaded; the steps after `step` up to `total` begin (a caller defers Ctrl-C from here on,
    /// so that it ends the run with a checkpoint instead of killing the process).
    case started(step: Int, total: Int)
    /// Step `step` (1-based) completed with this loss, in this many seconds.
    case step(step: Int, loss: Double, seconds: Double)
    /// checkpoint-`step` is written (its adapter file at `path`), periodic, final or on interruption.
    case checkpoint(step: Int, path: String)
}

/// How a run ended.
public enum TrainingOutcome: Equatable, Sendable {
    /// All steps done; the final adapter is at `path`.
    case finished(steps: Int, path: String)
    /// The stop flag turned true: the last completed step is saved as a checkpoint, and `--resume` continues.
    case interrupted(steps: Int)
    /// Resuming found the run already as long as asked; nothing was done.
    case alreadyComplete(steps: Int)
}

/// Mean seconds per step over the recent steps, the first step (which warms caches) excluded when
/// possible; recorded in train.json and shown by the progress bar.
public struct StepTiming: Sendable {
    private var seconds: [Double] = []

    public init() {}

    public mutating func add(_ s: Double) { seconds.append(s) }

    public var secondsPerStep: Double? {
        let recent = seconds.count > 1 ? Array(seconds.dropFirst().suffix(20)) : seconds
        return recent.isEmpty ? nil : recent.reduce(0, +) / Double(recent.count)
    }
}
