import Foundation
import Testing

/// The catalog never takes a URL for a path, never appears as a side effect of a failure, reports
/// every entry it stored, and cleans up after processes that died mid-write.
@Suite(.serialized) struct CatalogSafetyTests {
    /// An environment whose default catalog lies in a fresh home folder.
    static func home() -> (environment: [String: String], catalog: String) {
        let home = CLI.temporaryFolder().path
        return (["HOME": home, "XDG_DATA_HOME": "", "TLKIT_CATALOG": ""], home + "/.local/share/tlkit/catalog.sqlite")
    }

    @Test func urlsAreNeverPaths() throws {
        // A PostgreSQL URL is a server (here one that cannot be reached), never a file.
        let url = "postgresql://user:s3cret@127.0.0.1:1/db"
        let (environment, _) = Self.home()
        let folder = FileManager.default.currentDirectoryPath
        for result in [try CLI.run(["list", "--catalog", url]), try CLI.run(["add", Poison.kohya, "--catalog", url])] {
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("postgresql://user@127.0.0.1:1/db: cannot reach the server"), "\(result.stderr)")
            #expect(!result.stderr.contains("s3cret"), "the password was echoed: \(result.stderr)")
        }
        let runs = [
            try CLI.run(["get", "x", "-o", "-", "--catalog", "mysql://root:s3cret@db/x"]),
            try CLI.run(["list"], environment: environment.merging(["TLKIT_CATALOG": "mysql://root:s3cret@db/x"]) { $1 }),
            try CLI.run(["merge", "x", "-o", "-", "--catalog", "sqlite://s3cret"]),
        ]
        for result in runs {
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("://") && result.stderr.contains("not supported"), "\(result.stderr)")
            #expect(!result.stderr.contains("s3cret"), "the password was echoed: \(result.stderr)")
        }
        for made in ["postgresql:", "mysql:", "sqlite:", "127.0.0.1:1"] {
            #expect(!FileManager.default.fileExists(atPath: folder + "/" + made), "\(made) was created as a folder")
        }
    }

    @Test func failedCommandsCreateNoDefaultCatalog() throws {
        let (environment, catalog) = Self.home()
        let garbage = CLI.temporaryFolder().appendingPathComponent("garbage.safetensors")
        try Data("not a safetensors file at all".utf8).write(to: garbage)
        for arguments in [["add", "/nonexistent/file.safetensors"], ["add", garbage.path], ["get", "nothing", "-o", "-"],
                          ["show", "nothing"], ["rm", "nothing"], ["verify"], ["gc"], ["tag", "nothing", "t"]] {
            let result = try CLI.run(arguments, environment: environment)
            #expect(result.status != 0, "\(arguments)")
            #expect(!FileManager.default.fileExists(atPath: catalog), "\(arguments) left a catalog behind")
        }
    }

    @Test func listWithoutACatalogIsEmpty() throws {
        let (environment, catalog) = Self.home()
        let json = try CLI.run(["list", "--json"], environment: environment)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdout.isEmpty)
        let table = try CLI.run(["list"], environment: environment)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdoutLines.count <= 1, "\(table.stdout)")
        #expect(!FileManager.default.fileExists(atPath: catalog))
    }

    /// SIGINT at any moment of an add: either the entry was stored and its REF printed, or nothing was stored.
    @Test func interruptedAddReportsWhatItStored() throws {
        let folder = CLI.temporaryFolder()
        let catalog = folder.appendingPathComponent("c.sqlite").path
        let start = Date()
        #expect(try CLI.run(["add", Poison.kohya, "--name", "timing", "--catalog", catalog]).status == 0)
        let duration = Date().timeIntervalSince(start)
        for trial in 0..<16 {
            let name = "run\(trial)"
            let out = folder.appendingPathComponent("out\(trial)").path
            FileManager.default.createFile(atPath: out, contents: nil)
            // Distinct bytes each time (identical ones would only be found already stored).
            let input = try Poison.adapter(Float(trial + 1) / 1024, in: folder, name: "in\(trial).safetensors")
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["add", input, "--name", name, "--tag", "t\(trial)", "--catalog", catalog]
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Spread the interruptions over the add, its end included.
            usleep(useconds_t(duration * 1.2 * Double(trial) / 16 * 1_000_000))
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
            let printed = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let listed = try CLI.run(["list", "--json", "--catalog", catalog])
            let stored = listed.stdoutLines.contains { CLI.json($0)["name"] as? String == name }
            if process.terminationReason == .exit && process.terminationStatus == 0 {
                #expect(stored && printed.contains("\(name)@1"), "trial \(trial)")
            } else {
                // Killed before the handlers were installed, or exited 130: the REF printed iff stored.
                #expect(process.terminationReason == .uncaughtSignal || process.terminationStatus == 130, "trial \(trial)")
                #expect(stored == printed.contains("\(name)@1"), "trial \(trial): stored \(stored), printed '\(printed)'")
            }
        }
    }

    /// A process killed mid-write leaves `.NAME.tmp-PID-*`; the next write to NAME removes it, and only
    /// the files of processes that are gone.
    @Test func staleTemporaryFilesAreRemovedByTheNextWrite() throws {
        let folder = CLI.temporaryFolder()
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let target = "out.safetensors"
        let stale = ".\(target).tmp-\(dead.processIdentifier)-a1b2c3"
        let live = ".\(target).tmp-\(getpid())-d4e5f6"
        let other = ".other.safetensors.tmp-\(dead.processIdentifier)-g7h8i9"
        for name in [stale, live, other] {
            try Data(repeating: 7, count: 1 << 16).write(to: folder.appendingPathComponent(name))
        }
        let result = try CLI.run(["convert", Poison.kohya, "--to", "peft", "-o", folder.appendingPathComponent(target).path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Set(Poison.files(folder)) == [target, live, other])
    }
}
