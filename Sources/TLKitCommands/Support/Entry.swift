import Adapters
import ArgumentParser
import CMalloc
import Dispatch
import Engine
import SafeTensors
#if canImport(Glibc)
import Glibc
#endif

/// Runs tlkit with the exit codes of docs/contract.md ("Exit codes"): usage errors exit 2 (ArgumentParser's
/// default is 64), runtime failures 1, each with a one-line message naming what was wrong.
public func runTLKit(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
    Interruption.install()
    configureProcess()
    // A closed pipe on stdout is then a write error (EPIPE) reported below, not a silent death.
    signal(SIGPIPE, SIG_IGN)
    do {
        if let name = HelpRequest.unknownTopic(in: arguments) {
            Console.error("tlkit: no command named '\(name)' (tlkit --help lists them)")
            exit(2)
        }
        var command = try TLKit.parseAsRoot(arguments)
        do { try command.run() } catch { throw CommandFailure.describing(error, from: command) }
        try finishRun()
        exit(0)
    } catch {
        // A failure naming its command was explained where it was raised (see CatalogCLI.run).
        if let failure = error as? CommandFailure, failure.command != nil { failure.report() }
        if !(error is CommandFailure), let why = Console.standardOutputFailure() {
            Console.error("tlkit: standard output: \(why)")
            exit(1)
        }
        let error = MappedInputs.explain(error)
        let code = TLKit.exitCode(for: error)
        if code == .validationFailure {
            Console.error(TLKit.fullMessage(for: error))
            exit(2)
        }
        if let failure = error as? CommandFailure {
            failure.report()
        }
        if code == .success, let topic = HelpRequest.topic(of: arguments), let examples = HelpRequest.examples(of: topic) {
            var help = TLKit.fullMessage(for: error)
            while help.hasSuffix("\n") { help.removeLast() }
            Console.out(help + "\n\n" + examples)
            exit(0)
        }
        if code == .success || code.rawValue == 1 || error is ExitCode {
            // Help and version requests, and commands that already reported and chose their code.
            TLKit.exit(withError: error)
        }
        Console.error("tlkit: \(error)")
        exit(1)
    }
}

/// What every successful command must still pass: standard output was written in full, and no input
/// changed while it was read.
private func finishRun() throws {
    if let why = Console.standardOutputFailure() { throw CommandFailure("standard output: \(why)") }
    try MappedInputs.check()
}

/// The process-wide settings a tlkit process starts with.
private func configureProcess() {
    // Only the commands that run oneDNN pay for the restart (see the function); the others start as fast as before.
    if let command = CommandLine.arguments.dropFirst().first, ["train", "sample"].contains(command) {
        Parallel.restartWithPassiveOpenMPIfNeeded()
    }
    // Tensors are allocated and freed in the tens of megabytes; let malloc keep and reuse that memory
    // instead of mapping fresh (zero-filled, page-faulting) memory for every array.
    _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
    // Nothing runs BLAS yet: free the core OpenBLAS's idle workers spin on (commands that multiply
    // matrices get them back on their first threaded call).
    Parallel.stopIdleBLASWorkers()
}

/// Ctrl-C and SIGTERM remove the temporary file of any output not yet committed, then exit 130 / 143,
/// so an interrupted command never leaves a partial output. A command that promised to save something
/// first (training) sets `deferring`: the first signal is then only recorded in `requested`, for the command
/// to save and exit; a second one exits at once.
enum Interruption {
    nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []
    private static let lock = Lock()
    nonisolated(unsafe) private static var deferringValue = false
    nonisolated(unsafe) private static var requestedValue: Int32?
    nonisolated(unsafe) private static var holdingValue = false
    nonisolated(unsafe) private static var heldValue: Int32?

    /// Starts a stretch that must not be cut (an add's commit up to the printing of its REF): a signal
    /// arriving meanwhile takes effect at `release()`, so the REF of a committed entry is always printed.
    static func hold() { lock.withLock { holdingValue = true } }

    /// Ends the stretch; exits now with the code of a signal that arrived during it.
    static func release() {
        let code: Int32? = lock.withLock {
            holdingValue = false
            return heldValue
        }
        if let code {
            AtomicOutput.removeAbandoned()
            exit(code)
        }
    }

    /// Records a signal arriving while held; false means it is not held.
    private static func holdSignal(_ code: Int32) -> Bool {
        lock.withLock {
            guard holdingValue else { return false }
            if heldValue == nil { heldValue = code }
            return true
        }
    }

    static var deferring: Bool {
        get { lock.withLock { deferringValue } }
        set { lock.withLock { deferringValue = newValue } }
    }

    /// The exit code of the signal received while deferring (130 or 143), if any.
    static var requested: Int32? { lock.withLock { requestedValue } }

    /// Records the signal when deferring for the first time; false means: exit now.
    private static func record(_ code: Int32) -> Bool {
        lock.withLock {
            guard deferringValue, requestedValue == nil else { return false }
            requestedValue = code
            return true
        }
    }

    static func install() {
        for (signalNumber, code) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if holdSignal(code) { return }
                if record(code) {
                    Console.error("tlkit: interrupted; saving a checkpoint of the last completed step (press Ctrl-C again to quit without saving)")
                    return
                }
                AtomicOutput.removeAbandoned()
                exit(code)
            }
            source.resume()
            sources.append(source)
        }
    }
}

/// A failure a command has already described; `exitCode` follows docs/contract.md, "Exit codes".
/// The entry point prints it as `tlkit: message`, or `tlkit COMMAND: message` when `command` is set
/// (the catalog commands name themselves).
public struct CommandFailure: Error, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32
    public let command: String?

    public init(_ message: String, exitCode: Int32 = 1, command: String? = nil) {
        self.message = message
        self.exitCode = exitCode
        self.command = command
    }

    public var description: String { message }

    func report() -> Never {
        Console.error("tlkit\(command.map { " \($0)" } ?? ""): \(message)")
        exit(exitCode)
    }
}

/// A command whose failures the entry point describes (`CommandFailure.describing`): its `run` throws the
/// libraries' errors as they are, and a `CommandFailure` only where it adds what the library cannot know.
protocol DescribedFailures: ParsableCommand {
    /// The exit code of every failure, whatever it was; nil: 1, or 2 for usage errors. `diff` answers like
    /// cmp(1), whose 1 means "different", so all its failures exit 2.
    static var everyFailureExitCode: Int32? { get }
}

extension DescribedFailures {
    static var everyFailureExitCode: Int32? { nil }
}

extension CommandFailure {
    /// What an error thrown by `command`'s run exits with: the one place that maps the errors of the
    /// commands with `DescribedFailures` to exit codes and one-line messages (docs/contract.md, "Exit codes").
    /// An `ExitCode` is the command's own answer; the others keep the handling of ArgumentParser and the
    /// catalog (`CatalogCLI.run`).
    static func describing(_ error: any Error, from command: any ParsableCommand) -> any Error {
        guard let described = type(of: command) as? any DescribedFailures.Type, !(error is ExitCode) else { return error }
        if let code = described.everyFailureExitCode {
            return CommandFailure((error as? CommandFailure)?.message ?? "\(error)", exitCode: code)
        }
        switch error {
        case is CommandFailure, is ValidationError: return error
        case let usage as ConversionUsageError: return CommandFailure(usage.message, exitCode: 2)
        default: return CommandFailure("\(error)")
        }
    }
}

/// Human text goes to stderr; stdout is for primary output and JSON.
public enum Console {
    public static func error(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        writeAll(2, line)
    }

    public static func out(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        writeAll(1, line)
    }

    /// `text` exactly as given (no newline added).
    public static func write(_ text: String) { writeAll(1, text) }

    /// Unbuffered, so stdout and stderr interleave in the order written.
    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if fd == 1 { recordOutputFailure() }
                return
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Why standard output could not be written (a full disk, a closed pipe), after flushing anything
    /// buffered by the C library; nil when everything reached it. Commands write stdout through
    /// `out`/`write`, never `print`, whose buffered errors would be lost.
    static func standardOutputFailure() -> String? {
        if fflush(nil) != 0 { recordOutputFailure() }
        return lock.withLock { outputFailure }
    }

    private static func recordOutputFailure() {
        let why = String(cString: strerror(errno))
        lock.withLock { if outputFailure == nil { outputFailure = why } }
    }

    nonisolated(unsafe) private static var outputFailure: String?
    private static let lock = Lock()
}
