import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A mapped input truncated while tlkit reads it: exit 1 naming the file, no crash, no temporary
/// file, nothing stored.
struct ChangedInputTests {
    /// 256 MB of factors (a hole on disk), enough that reading it outlasts the test's reaction.
    static func bigAdapter(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("big.safetensors").path
        try HostileFiles.sparseKohya(path, factors: Array(repeating: (down: [1024, 8192], up: [8192, 1024]), count: 4))
        return path
    }

    static func start(_ arguments: [String], stdout: Any = FileHandle.nullDevice) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = arguments
        let errors = Pipe()
        process.standardOutput = stdout
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    /// Waits (up to a minute) until `condition` holds, then freezes the process so the test can
    /// truncate its input at a known point; false when the process ended first.
    static func freeze(_ process: Process, when condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(60)
        while !condition() {
            if !process.isRunning || Date() > deadline { return false }
            usleep(500)
        }
        kill(process.processIdentifier, SIGSTOP)
        return process.isRunning
    }

    static func finish(_ process: Process, _ errors: Pipe) -> String {
        kill(process.processIdentifier, SIGCONT)
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test func convertToFileReportsTheChangeAndLeavesNothing() throws {
        let folder = CLI.temporaryFolder()
        let input = try Self.bigAdapter(in: folder)
        let output = folder.appendingPathComponent("out.safetensors").path
        let (process, errors) = try Self.start(["convert", input, "--to", "peft", "-o", output])
        let started = Self.freeze(process) {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains { $0.hasPrefix(".out.safetensors.tmp-") }
        }
        #expect(started, "convert finished before the test could truncate its input")
        #expect(truncate(input, 4096) == 0)
        let stderr = Self.finish(process, errors)
        #expect(process.terminationReason == .exit, "killed by a signal: \(stderr)")
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.contains("\(input): changed while being read"), "\(stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["big.safetensors"], "no output, no temporary file")
    }

    @Test func convertToFifoReportsTheChange() throws {
        // The FIFO blocks tlkit after the header, deterministically before it reads the tensors again.
        let folder = CLI.temporaryFolder()
        let input = try Self.bigAdapter(in: folder)
        let fifo = folder.appendingPathComponent("out.fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let (process, errors) = try Self.start(["convert", input, "--to", "peft", "-o", fifo])
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var received = 0, truncated = false
        while true {
            let n = read(reader, &buffer, buffer.count)
            if n > 0 {
                received += n
                if !truncated { #expect(truncate(input, 4096) == 0); truncated = true }
            } else if n == 0, received > 0 || !process.isRunning {
                break  // the writer closed (or never came)
            } else {
                usleep(1000)
            }
        }
        let stderr = Self.finish(process, errors)
        #expect(truncated, "tlkit never wrote to the FIFO: \(stderr)")
        #expect(process.terminationReason == .exit, "killed by a signal: \(stderr)")
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.contains("\(input): changed while being read"), "\(stderr)")
    }

    @Test func addReportsTheChangeAndStoresNothing() throws {
        let folder = CLI.temporaryFolder()
        let input = try Self.bigAdapter(in: folder)
        let catalog = folder.appendingPathComponent("catalog.sqlite").path
        let (process, errors) = try Self.start(["add", input, "--name", "big", "--catalog", catalog])
        let started = Self.freeze(process) {
            ((try? String(contentsOfFile: "/proc/\(process.processIdentifier)/maps", encoding: .utf8)) ?? "").contains(input)
        }
        #expect(started, "add finished before the test could truncate its input")
        #expect(truncate(input, 4096) == 0)
        let stderr = Self.finish(process, errors)
        #expect(process.terminationReason == .exit, "killed by a signal: \(stderr)")
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.contains("\(input): changed while being read"), "\(stderr)")
        let list = try CLI.run(["list", "--json", "--catalog", catalog])
        #expect(!list.stdout.contains("big"), "nothing may be stored: \(list.stdout)")
    }
}
