import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Outputs never replace what is not a regular file: devices and FIFOs are written through, symlinks
/// are followed, directories refused; a full or closed standard output fails every command.
struct OutputTargetTests {
    static let input = HostileFiles.kohyaFixture

    /// What `convert --to kohya` writes, for comparing with what reached a device or FIFO.
    static func expectedBytes() throws -> Data {
        let result = try CLI.run(["convert", input, "--to", "kohya", "-o", "-"])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdoutData
    }

    /// The file's type bits (S_IFREG, S_IFLNK, …) as `lstat` sees them, nil when it does not exist.
    static func kind(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
    }

    static func leftovers(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.contains(".tmp-") }
    }

    /// A private node for the device `/dev/NAME` (major 1, `minor`) where allowed (root), so a regression
    /// cannot replace the real one; elsewhere the real one, which an unprivileged process cannot replace.
    static func device(_ name: String, minor: Int, in folder: URL) throws -> String {
        let node = folder.appendingPathComponent(name).path
        return try CLI.shell("mknod '\(node)' c 1 \(minor)").status == 0 ? node : "/dev/\(name)"
    }

    @Test func characterDeviceIsWrittenThroughAndItsErrorsReported() throws {
        let folder = CLI.temporaryFolder()
        let device = try Self.device("full", minor: 7, in: folder)
        let result = try CLI.run(["convert", Self.input, "--to", "kohya", "-o", device])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("No space left on device"), "\(result.stderr)")
        #expect(Self.kind(device) == S_IFCHR, "the device node must survive")
        #expect(Self.leftovers(folder).isEmpty)

        let null = try Self.device("null", minor: 3, in: folder)
        let written = try CLI.run(["convert", Self.input, "--to", "kohya", "-o", null])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(Self.kind(null) == S_IFCHR)
    }

    @Test func fifoIsWrittenThroughInFull() throws {
        let folder = CLI.temporaryFolder()
        let fifo = folder.appendingPathComponent("out.fifo").path, received = folder.appendingPathComponent("received").path
        let result = try CLI.shell("""
            mkfifo '\(fifo)' || exit 9
            timeout -s KILL 60 cat '\(fifo)' > '\(received)' &
            "$TLKIT" convert '\(Self.input)' --to kohya -o '\(fifo)'; status=$?; wait; exit $status
            """)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Self.kind(fifo) == S_IFIFO, "the FIFO must stay a FIFO")
        #expect(try Data(contentsOf: URL(fileURLWithPath: received)) == Self.expectedBytes())
        #expect(Self.leftovers(folder).isEmpty)
    }

    @Test func symlinkIsFollowedAndItsTargetReplacedInItsOwnFolder() throws {
        let linkFolder = CLI.temporaryFolder(), targetFolder = CLI.temporaryFolder()
        let target = targetFolder.appendingPathComponent("real.safetensors").path
        let link = linkFolder.appendingPathComponent("link.safetensors").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let result = try CLI.run(["convert", Self.input, "--to", "kohya", "-o", link])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Self.kind(link) == S_IFLNK, "the link must stay a link")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Self.expectedBytes())
        #expect(Self.leftovers(linkFolder).isEmpty && Self.leftovers(targetFolder).isEmpty)

        // A relative link to a file that does not exist yet creates it beside the link.
        let dangling = linkFolder.appendingPathComponent("dangling.safetensors").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "made.safetensors")
        #expect(try CLI.run(["convert", Self.input, "--to", "kohya", "-o", dangling]).status == 0)
        #expect(Self.kind(dangling) == S_IFLNK)
        #expect(Self.kind(linkFolder.appendingPathComponent("made.safetensors").path) == S_IFREG)
    }

    @Test func directoryIsRefused() throws {
        let folder = CLI.temporaryFolder()
        let target = folder.appendingPathComponent("out.safetensors")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        let link = folder.appendingPathComponent("link.safetensors").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target.path)
        for destination in [target.path, link] {
            let result = try CLI.run(["convert", Self.input, "--to", "kohya", "-o", destination])
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("is a directory"), "\(result.stderr)")
            #expect(Self.kind(target.path) == S_IFDIR)
            #expect(Self.leftovers(folder).isEmpty)
        }
    }

    /// Each command's primary output, sent to a full device: exit 1 and a message, never a silent 0.
    static func commandsWritingStandardOutput(catalog: String) -> [[String]] {
        [
            ["inspect", input],
            ["inspect", "--json", input],
            ["convert", input, "--to", "peft", "-o", "-"],
            ["diff", input, input, "--json"],
            ["list", "--catalog", catalog],
            ["list", "--json", "--catalog", catalog],
            ["show", "probe", "--catalog", catalog],
            ["get", "probe", "-o", "-", "--catalog", catalog],
            ["add", input, "--name", "again", "--catalog", catalog],
        ]
    }

    static func catalogWithOneEntry() throws -> String {
        let catalog = CLI.temporaryFolder().appendingPathComponent("catalog.sqlite").path
        let added = try CLI.run(["add", input, "--name", "probe", "--catalog", catalog])
        #expect(added.status == 0, "\(added.stderr)")
        return catalog
    }

    @Test func fullStandardOutputFailsEveryCommand() throws {
        let catalog = try Self.catalogWithOneEntry()
        for arguments in Self.commandsWritingStandardOutput(catalog: catalog) {
            let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
            let result = try CLI.shell("\"$TLKIT\" \(quoted) > /dev/full")
            #expect(result.status == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("No space left on device"), "\(arguments): \(result.stderr)")
        }
    }

    @Test func closedPipeFailsEveryCommand() throws {
        let catalog = try Self.catalogWithOneEntry()
        for arguments in Self.commandsWritingStandardOutput(catalog: catalog) {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = arguments
            let pipe = Pipe(), errors = Pipe()
            try pipe.fileHandleForReading.close()  // nobody will ever read: every write is EPIPE
            process.standardOutput = pipe
            process.standardError = errors
            process.standardInput = FileHandle.nullDevice
            try process.run()
            try pipe.fileHandleForWriting.close()
            let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit, "\(arguments): killed by a signal")
            #expect(process.terminationStatus == 1, "\(arguments): \(stderr)")
            #expect(stderr.contains("Broken pipe"), "\(arguments): \(stderr)")
        }
    }
}
