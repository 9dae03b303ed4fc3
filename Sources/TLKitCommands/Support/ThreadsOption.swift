import ArgumentParser
import Engine

/// `--threads N`: the engine's parallel loops and OpenBLAS (default: every core).
struct ThreadsOption: ParsableArguments {
    @Option(parsing: .unconditional, help: "Compute threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func apply() {
        if let threads { Parallel.threads = threads }
    }
}
