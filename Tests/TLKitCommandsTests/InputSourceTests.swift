import Foundation
import Testing

/// Inputs that are not plain files (pipes, FIFOs, process substitution, /dev/stdin) are read in full
/// like `-`, and standard input is spooled to a temporary file rather than held in memory.
struct InputSourceTests {
    static let input = HostileFiles.kohyaFixture

    @Test func processSubstitutionIsReadInFull() throws {
        let result = try CLI.shell("""
            "$TLKIT" diff '\(Self.input)' <("$TLKIT" convert '\(Self.input)' --to kohya -o -) --json
            """)
        #expect(result.status == 0, "\(result.stderr)")
        #expect((CLI.json(result.stdout)["summary"] as? [String: Any])?["equal"] as? Bool == true, "\(result.stderr)")
    }

    @Test func devStdinAndFifoAreReadLikeStandardInput() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.input))
        let expected = CLI.json(try CLI.run(["inspect", "--json", Self.input]).stdout)
        let viaStdin = try CLI.run(["inspect", "--json", "/dev/stdin"], stdin: bytes)
        #expect(viaStdin.status == 0, "\(viaStdin.stderr)")
        #expect(CLI.json(viaStdin.stdout)["modules"] as? Int == expected["modules"] as? Int)

        let fifo = CLI.temporaryFolder().appendingPathComponent("adapter.fifo").path
        let viaFifo = try CLI.shell("""
            mkfifo '\(fifo)' || exit 9
            timeout -s KILL 60 cat '\(Self.input)' > '\(fifo)' &
            "$TLKIT" inspect --json '\(fifo)'
            """)
        #expect(viaFifo.status == 0, "\(viaFifo.stderr)")
        #expect(CLI.json(viaFifo.stdout)["modules"] as? Int == expected["modules"] as? Int)
        #expect(CLI.json(viaFifo.stdout)["format"] as? String == "kohya")
    }

    @Test func emptyPipeIsReportedNotCrashed() throws {
        for script in ["\"$TLKIT\" inspect /dev/stdin < /dev/null", "true | \"$TLKIT\" convert - --to kohya -o -"] {
            let result = try CLI.shell(script)
            #expect(result.status == 1, "\(script): \(result.stderr)")
            #expect(result.stderr.contains("0 bytes"), "\(script): \(result.stderr)")
        }
    }

    /// Peak resident memory of `tlkit ARGS` reading `file` through a pipe, as GNU time measures it (the
    /// test process's own rusage would count its memory too: posix_spawn's child inherits it).
    static func peakMemory(_ arguments: [String], piping file: String) throws -> (status: Int32, bytes: Int) {
        let report = CLI.temporaryFolder().appendingPathComponent("peak").path
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let result = try CLI.shell("cat '\(file)' | /usr/bin/time -f %M -o '\(report)' \"$TLKIT\" \(quoted) > /dev/null")
        let kilobytes = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").last.flatMap { Int($0) }
        #expect(kilobytes != nil, "\(result.stderr)")
        return (result.status, (kilobytes ?? 0) * 1024)
    }

    @Test func standardInputIsSpooledNotHeldInMemory() throws {
        let folder = CLI.temporaryFolder()
        let big = folder.appendingPathComponent("big.safetensors").path
        let size = try HostileFiles.sparseKohya(big, factors: Array(repeating: (down: [1024, 8192], up: [8192, 1024]), count: 4))
        let inspect = try Self.peakMemory(["inspect", "-"], piping: big)
        #expect(inspect.status == 0)
        #expect(inspect.bytes < size / 4, "inspect - peaked at \(inspect.bytes) bytes for a \(size)-byte input")
        let catalog = folder.appendingPathComponent("catalog.sqlite").path
        let add = try Self.peakMemory(["add", "-", "--name", "big", "--catalog", catalog], piping: big)
        #expect(add.status == 0)
        // add reads every byte, so the mapped input counts once; holding it in memory counted it twice.
        #expect(add.bytes < size * 3 / 2, "add - peaked at \(add.bytes) bytes for a \(size)-byte input")
    }
}
