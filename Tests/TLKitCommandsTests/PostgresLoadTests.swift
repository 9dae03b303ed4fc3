import Foundation
import Testing
import TestSupport
@testable import Catalog

/// Many writers at once on one server catalog, with `gc` in a loop and a reader beside them (bounded,
/// over the test server's socket): every add lands exactly once, versions of a name are consecutive,
/// every `get` is byte-identical, `verify` is intact.
@Suite(.enabled(if: TestServer.enabled)) struct PostgresLoadTests {
    /// 8 processes of 50 adds each, as in the issue.
    static let writers = 8, addsEach = 50

    @Test func writersAGcLoopAndAReaderAtOnce() throws {
        let catalog = try PostgresCatalogTests.newDatabase()
        let folder = CLI.temporaryFolder()
        #expect(try CLI.run(["init", "--catalog", catalog]).status == 0)
        // Small adapters sharing one tensor, each with one of its own; two names shared by the writers.
        var files: [[URL]] = []
        var fileOfHash: [String: URL] = [:]
        for w in 0..<Self.writers {
            files.append(try (0..<Self.addsEach).map { try PostgresCatalogTests.adapter(100 * (w + 1) + $0, in: folder) })
            for file in files[w] { fileOfHash[SafeTensorsFixture.sha256(try Data(contentsOf: file))] = file }
        }
        let tlkit = CLI.executable.path
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

        // Each writer adds its files one after another; an add refused because gc removed a tensor it
        // shared meanwhile is run again (a re-run of an add that did land finds it stored: same REF).
        var processes: [(Process, URL)] = []
        for w in 0..<Self.writers {
            let script = files[w].map { file in
                "for attempt in 1 2 3 4 5; do r=$(\(quoted(tlkit)) add \(quoted(file.path)) --name load\(w % 2) --catalog \(quoted(catalog))) && { echo \"\(file.lastPathComponent) $r\"; break; }; done"
            }.joined(separator: "\n")
            let out = folder.appendingPathComponent("writer\(w).out")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            processes.append((try Self.bash(script, stdout: out), out))
        }
        let stop = folder.appendingPathComponent("stop").path
        let gcOut = folder.appendingPathComponent("gc.out")
        FileManager.default.createFile(atPath: gcOut.path, contents: nil)
        let gc = try Self.bash("n=0; while [ ! -e \(quoted(stop)) ]; do \(quoted(tlkit)) gc --catalog \(quoted(catalog)) 2>/dev/null && n=$((n+1)); done; echo $n", stdout: gcOut)

        // The reader: lists, then gets the newest entry listed, until the writers are done.
        var reads = 0
        while processes.contains(where: { $0.0.isRunning }) {
            let listed = try CLI.run(["list", "--json", "--catalog", catalog])
            #expect(listed.status == 0, "\(listed.stderr)")
            guard let last = listed.stdoutLines.last.map(CLI.json), let ref = last["ref"] as? String, let sha = last["sha256"] as? String else { continue }
            let got = try CLI.run(["get", ref, "-o", "-", "--catalog", catalog])
            #expect(got.status == 0, "\(ref): \(got.stderr)")
            #expect(fileOfHash[sha].map { got.stdoutData == (try? Data(contentsOf: $0)) } == true, "\(ref) is not the file that made it")
            reads += 1
        }
        FileManager.default.createFile(atPath: stop, contents: nil)
        gc.waitUntilExit()

        // Every add landed exactly once, each name's versions are 1...n, each get is byte-identical.
        var refOfFile: [String: String] = [:]
        for (process, out) in processes {
            #expect(process.terminationStatus == 0)
            for line in try String(contentsOf: out, encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: " ").map(String.init)
                refOfFile[parts[0]] = parts[1]
            }
        }
        #expect(refOfFile.count == Self.writers * Self.addsEach)
        let opened = try CatalogStores.open(catalog, create: false)
        let entries = try opened.list(filter: ListFilter())
        #expect(entries.count == Self.writers * Self.addsEach)
        #expect(Set(refOfFile.values) == Set(entries.map(\.reference.description)))
        for name in ["load0", "load1"] {
            #expect(entries.filter { $0.name == name }.map(\.version) == Array(1...(Self.writers / 2 * Self.addsEach)))
        }
        for entry in entries {
            let got = try CLI.run(["get", entry.reference.description, "-o", "-", "--catalog", catalog])
            #expect(fileOfHash[entry.sha256].map { got.stdoutData == (try? Data(contentsOf: $0)) } == true, "\(entry.reference)")
        }
        #expect(try CLI.run(["verify", "--catalog", catalog]).status == 0)
        // One shared tensor and one of each file's own: nothing stored twice.
        #expect(try opened.totals().blobs == Self.writers * Self.addsEach + 1)
        print("load: \(Self.writers) writers x \(Self.addsEach) adds, \(reads) list+get rounds, \(try String(contentsOf: gcOut, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) gc runs beside them")
    }

    static func bash(_ script: String, stdout: URL) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }
}
