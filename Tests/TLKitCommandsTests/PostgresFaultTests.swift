import Foundation
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// The server goes away in the middle of an add or a get: stopped as in a crash (`pg_ctl stop -m
/// immediate`) or the connection cut by the server (`pg_terminate_backend`). Each time the command fails
/// with exit 1 and a message that says so, the catalog holds nothing half-written (`verify` passes, no
/// stray tensors), a get leaves no output file, and the same command simply works once the server is back.
///
/// These tests stop and restart a server of their own (Scripts/with-postgres.sh starts it beside the
/// shared one), so they run one at a time. A client that waits forever on a dead server is a failure too:
/// the time limit turns that hang into one.
@Suite(.enabled(if: FaultServer.enabled), .serialized, .timeLimit(.minutes(2))) struct PostgresFaultTests {
    @Test func serverStoppedJustBeforeCommit() throws {
        let catalog = try FaultServer.newDatabase()
        let folder = CLI.temporaryFolder()
        let file = try SafeTensorsFile.open(try FaultServer.adapter(megabytes: 4, seed: 1, in: folder).path)
        let store = try CatalogStores.open(catalog, create: true)
        // Every tensor is sent; the server dies before COMMIT.
        #expect(throws: CatalogError.self) {
            _ = try store.add(file: file, originalPath: nil, name: "fault", tags: [], note: nil, facts: EntryFacts(), level: nil, digests: nil,
                              beforeCommit: { try? FaultServer.control("stop") })
        }
        try FaultServer.control("start")
        try FaultServer.expectEmptyAndIntact(catalog)
        #expect(try CLI.run(["add", file.path, "--name", "fault", "--catalog", catalog]).stdout == "fault@1\n")
    }

    @Test func serverStoppedDuringAnAdd() throws {
        try FaultServer.interruptAdd { try FaultServer.control("stop"); try FaultServer.control("start") }
    }

    @Test func connectionCutDuringAnAdd() throws {
        try FaultServer.interruptAdd { try FaultServer.terminateBackends() }
    }

    @Test func serverStoppedDuringAGet() throws {
        let catalog = try FaultServer.newDatabase()
        let folder = CLI.temporaryFolder()
        let input = try FaultServer.adapter(megabytes: 256, seed: 3, in: folder)
        #expect(try CLI.run(["add", input.path, "--name", "big", "--catalog", catalog]).status == 0)
        let output = folder.appendingPathComponent("out.safetensors")
        let errors = folder.appendingPathComponent("get.err")
        FileManager.default.createFile(atPath: errors.path, contents: nil)
        let get = try CLI.start(["get", "big", "-o", output.path, "--catalog", catalog], stderr: try FileHandle(forWritingTo: errors))
        let caught = try FaultServer.waitForQuery("SELECT", in: catalog, while: get)
        try FaultServer.control("stop")
        get.waitUntilExit()
        try FaultServer.control("start")
        try #require(caught, "the get ended before the server could be stopped")
        #expect(get.terminationStatus == 1)
        let message = try String(contentsOf: errors, encoding: .utf8)
        #expect(message.contains("big") || message.contains("server"), "\(message)")
        // No output and no temporary file beside it: only the input and the error log are in the folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == [input.lastPathComponent, "get.err"].sorted())
        #expect(try CLI.run(["verify", "--catalog", catalog]).status == 0)
        #expect(try CLI.run(["get", "big", "-o", output.path, "--catalog", catalog]).status == 0)
        #expect(try Data(contentsOf: output) == Data(contentsOf: input))
    }
}

/// The fault tests' own server and what they do to it.
enum FaultServer {
    static let url = ProcessInfo.processInfo.environment["TLKIT_TEST_POSTGRES_FAULT_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let ctl = ProcessInfo.processInfo.environment["TLKIT_TEST_POSTGRES_FAULT_CTL"].flatMap { $0.isEmpty ? nil : $0 }
    /// Under CI the tests run (and fail without the server) rather than vanish.
    static let enabled = url != nil || ProcessInfo.processInfo.environment["CI"] == "true"

    static func serverURL() throws -> String {
        guard let url, ctl != nil else {
            throw CatalogError.io("TLKIT_TEST_POSTGRES_FAULT_URL/_CTL are not set: the fault tests need their own server (run them through Scripts/with-postgres.sh)")
        }
        return url
    }

    static func newDatabase() throws -> String {
        let url = try serverURL()
        let database = "tlkit_fault_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try PostgresSession(PostgresLocation.parse(url)).query("CREATE DATABASE \(database)")
        return url + "&dbname=" + database
    }

    /// `pg_ctl stop -m immediate`, or the server started again.
    static func control(_ action: String) throws {
        _ = try serverURL()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ctl!)
        process.arguments = [action]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "fault server \(action) failed")
    }

    /// Ends every other connection to the server from the server's side.
    static func terminateBackends() throws {
        try PostgresSession(PostgresLocation.parse(try serverURL()))
            .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    }

    /// Waits until some connection to `catalog`'s database runs a statement that starts with `prefix` —
    /// the command is in the middle of its work — and returns true; false when `process` ended first.
    static func waitForQuery(_ prefix: String, in catalog: String, while process: Process) throws -> Bool {
        let database = String(catalog.split(separator: "=").last!)
        let watcher = try PostgresSession(PostgresLocation.parse(try serverURL()))
        while process.isRunning {
            let busy = try watcher.query("""
                SELECT count(*)::bigint FROM pg_stat_activity
                WHERE datname = $1 AND pid <> pg_backend_pid() AND state = 'active' AND starts_with(query, $2)
                """, [database, prefix])[0].decode(Int.self)
            if busy > 0 { return true }
            usleep(2_000)
        }
        return false
    }

    /// Starts `tlkit add` of a 256 MB file, does `fault` while the add's transaction is open, and checks
    /// that the add failed cleanly, left nothing, and succeeds when run again.
    static func interruptAdd(_ fault: () throws -> Void) throws {
        let catalog = try newDatabase()
        let folder = CLI.temporaryFolder()
        let input = try adapter(megabytes: 256, seed: 2, in: folder)
        #expect(try CLI.run(["init", "--catalog", catalog]).status == 0)
        let errors = folder.appendingPathComponent("add.err")
        FileManager.default.createFile(atPath: errors.path, contents: nil)
        let add = try CLI.start(["add", input.path, "--name", "cut", "--catalog", catalog], stderr: try FileHandle(forWritingTo: errors))
        // Inside the add's transaction: its tensors are being sent.
        let caught = try waitForQuery("INSERT INTO blob_chunks", in: catalog, while: add)
        try fault()
        add.waitUntilExit()
        try #require(caught, "the add ended before the fault could happen")
        #expect(add.terminationStatus == 1)
        let message = try String(contentsOf: errors, encoding: .utf8)
        #expect(message.contains("server"), "\(message)")
        #expect(!message.contains("Fatal error") && !message.contains("Stack dump"), "\(message)")
        try expectEmptyAndIntact(catalog)
        #expect(try CLI.run(["add", input.path, "--name", "cut", "--catalog", catalog]).stdout == "cut@1\n")
        let got = try CLI.run(["get", "cut", "-o", "-", "--catalog", catalog])
        #expect(got.stdoutData == (try Data(contentsOf: input)))
    }

    /// Nothing of an interrupted add is left: no entry, no stored tensor, and `verify` passes.
    static func expectEmptyAndIntact(_ catalog: String) throws {
        let store = try CatalogStores.open(catalog, create: false)
        let totals = try store.totals()
        #expect(totals.entries == 0 && totals.blobs == 0, "\(totals)")
        #expect(try store.verify(nil).isEmpty)
        #expect(try CLI.run(["verify", "--catalog", catalog]).status == 0)
    }

    /// A file of `megabytes` MB in 8 MB float32 tensors of noise (stored nearly uncompressed, so moving it
    /// takes long enough to be interrupted).
    static func adapter(megabytes: Int, seed: UInt64, in folder: URL) throws -> URL {
        let tensorBytes = 8 << 20, count = megabytes * (1 << 20) / tensorBytes
        var header: [String] = []
        for k in 0..<count {
            header.append("\"t\(k).weight\":{\"dtype\":\"F32\",\"shape\":[\(tensorBytes / 4)],\"data_offsets\":[\(k * tensorBytes),\((k + 1) * tensorBytes)]}")
        }
        var data = [UInt8](repeating: 0, count: count * tensorBytes)
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt32.self)
            for i in words.indices {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                // A finite float in ±[1, 2): sign and mantissa random, exponent fixed.
                words[i] = UInt32(truncatingIfNeeded: state) & 0x807F_FFFF | 0x3F80_0000
            }
        }
        let url = folder.appendingPathComponent("noise\(seed).safetensors")
        try Data(HostileFiles.safetensors("{" + header.joined(separator: ",") + "}", data: data)).write(to: url)
        return url
    }
}
