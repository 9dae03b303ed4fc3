import Foundation
import Testing
@testable import Catalog

/// The catalog commands against a PostgreSQL server (`TLKIT_TEST_POSTGRES_URL`, a throwaway server that
/// Scripts/with-postgres.sh starts). Under `CI=true` they run even without it, and fail.
@Suite(.enabled(if: TestServer.enabled)) struct PostgresCatalogTests {
    static let serverURL = TestServer.url

    /// The URL of a fresh, empty database on the test server.
    static func newDatabase() throws -> String {
        guard let url = serverURL else {
            throw CatalogError.io("TLKIT_TEST_POSTGRES_URL is not set: the PostgreSQL catalog tests need a server (run them through Scripts/with-postgres.sh)")
        }
        let database = "tlkit_cli_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try PostgresSession(PostgresLocation.parse(url)).query("CREATE DATABASE \(database)")
        return url + (url.contains("?") ? "&" : "?") + "dbname=" + database
    }

    /// A small adapter-like file: one tensor all files share and one of its own (from `seed`).
    static func adapter(_ seed: Int, in folder: URL) throws -> URL {
        func floats(_ count: Int, _ seed: Int) -> [UInt8] {
            var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1
            var out: [UInt8] = []
            for _ in 0..<count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let value = Float(Int64(bitPattern: state >> 11) % 1000) / 50_000
                withUnsafeBytes(of: value.bitPattern.littleEndian) { out += $0 }
            }
            return out
        }
        let json = #"{"shared.weight":{"dtype":"F32","shape":[64,16],"data_offsets":[0,4096]},"own.weight":{"dtype":"F32","shape":[16,64],"data_offsets":[4096,8192]}}"#
        let url = folder.appendingPathComponent("a\(seed).safetensors")
        try Data(HostileFiles.safetensors(json, data: floats(1024, 7) + floats(1024, 1000 + seed))).write(to: url)
        return url
    }

    @Test func concurrentAddsOfOneNameGetConsecutiveVersions() throws {
        let catalog = try Self.newDatabase()
        let folder = CLI.temporaryFolder()
        let writers = 6
        let files = try (0..<writers).map { try Self.adapter($0, in: folder) }
        // Separate processes, started together, all adding under one name.
        let results = UnsafeMutableBufferPointer<CLI.Result?>.allocate(capacity: writers)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let box = UncheckedResults(results)
        DispatchQueue.concurrentPerform(iterations: writers) { i in
            box.slots[i] = try? CLI.run(["add", files[i].path, "--name", "farm", "--catalog", catalog])
        }
        var fileOf: [String: URL] = [:]
        for i in 0..<writers {
            guard let result = results[i] else { Issue.record("writer \(i) did not run"); continue }
            #expect(result.status == 0, "writer \(i): \(result.stderr)")
            fileOf[result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)] = files[i]
        }
        #expect(Set(fileOf.keys) == Set((1...writers).map { "farm@\($0)" }), "\(fileOf.keys.sorted())")
        for (ref, file) in fileOf {
            let got = try CLI.run(["get", ref, "-o", "-", "--catalog", catalog])
            #expect(got.status == 0, "\(got.stderr)")
            #expect(got.stdoutData == (try Data(contentsOf: file)), "\(ref) is not byte-identical")
        }
        let verify = try CLI.run(["verify", "--catalog", catalog])
        #expect(verify.status == 0, "\(verify.stderr)")
        // The shared tensor is stored once: one blob each plus the shared one.
        let opened = try CatalogStores.open(catalog, create: false)
        #expect(try opened.totals().blobs == writers + 1)
    }

    @Test func gcBesideAddsNeverTakesATensorAnAddUses() throws {
        let catalog = try Self.newDatabase()
        let folder = CLI.temporaryFolder()
        // The shared tensor is stored but unused: every add below reuses it while gc wants it gone.
        #expect(try CLI.run(["add", try Self.adapter(0, in: folder).path, "--name", "seed", "--catalog", catalog]).status == 0)
        #expect(try CLI.run(["rm", "seed", "--catalog", catalog]).status == 0)
        let writers = 4
        let files = try (1...writers).map { try Self.adapter($0, in: folder) }
        let results = UnsafeMutableBufferPointer<CLI.Result?>.allocate(capacity: writers + 1)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let box = UncheckedResults(results)
        DispatchQueue.concurrentPerform(iterations: writers + 1) { i in
            if i == writers {
                for _ in 0..<8 { box.slots[i] = try? CLI.run(["gc", "--catalog", catalog]) }
            } else {
                box.slots[i] = try? CLI.run(["add", files[i].path, "--name", "farm", "--catalog", catalog])
            }
        }
        #expect(results[writers]?.status == 0, "\(results[writers]?.stderr ?? "gc did not run")")
        // Each add either landed or was refused as a whole, asking to be run again.
        var added: [(String, URL)] = []
        for i in 0..<writers {
            guard let result = results[i] else { Issue.record("writer \(i) did not run"); continue }
            if result.status == 0 {
                added.append((result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), files[i]))
            } else {
                #expect(result.status == 1 && result.stderr.contains("removed by a concurrent 'tlkit gc'"), "\(result.stderr)")
                let again = try CLI.run(["add", files[i].path, "--name", "farm", "--catalog", catalog])
                #expect(again.status == 0, "\(again.stderr)")
                added.append((again.stdout.trimmingCharacters(in: .whitespacesAndNewlines), files[i]))
            }
        }
        #expect(Set(added.map(\.0)) == Set((1...writers).map { "farm@\($0)" }))
        for (ref, file) in added {
            let got = try CLI.run(["get", ref, "-o", "-", "--catalog", catalog])
            let original = try Data(contentsOf: file)
            #expect(got.status == 0 && got.stdoutData == original, "\(ref): \(got.stderr)")
        }
        let verify = try CLI.run(["verify", "--catalog", catalog])
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    @Test func listJSONMatchesTheSQLiteCatalog() throws {
        let server = try Self.newDatabase()
        let folder = CLI.temporaryFolder()
        let file = folder.appendingPathComponent("c.sqlite").path
        let adapters = try (0..<3).map { try Self.adapter($0, in: folder) }
        for catalog in [server, file] {
            for (i, adapter) in adapters.enumerated() {
                let added = try CLI.run(["add", adapter.path, "--name", i == 2 ? "other" : "run", "--tag", "t\(i)", "--catalog", catalog])
                #expect(added.status == 0, "\(added.stderr)")
            }
            #expect(try CLI.run(["rm", "run@1", "--catalog", catalog]).status == 0)
            #expect(try CLI.run(["tag", "run@2", "best", "--catalog", catalog]).status == 0)
        }
        // The time of adding differs; every other field is the same.
        func listed(_ catalog: String, _ extra: [String] = []) throws -> [String] {
            let result = try CLI.run(["list", "--json", "--catalog", catalog] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdoutLines.map { $0.replacingOccurrences(of: #""added":"[^"]*""#, with: "", options: .regularExpression) }
        }
        for extra in [[], ["--name", "r*"], ["--tag", "best"]] {
            let fromServer = try listed(server, extra), fromFile = try listed(file, extra)
            #expect(!fromServer.isEmpty)
            #expect(fromServer == fromFile, "\(extra)")
        }
        let showServer = try CLI.run(["show", "other", "--json", "--catalog", server]).stdout
        let showFile = try CLI.run(["show", "other", "--json", "--catalog", file]).stdout
        let strip = { (s: String) in s.replacingOccurrences(of: #""added":"[^"]*""#, with: "", options: .regularExpression) }
        #expect(strip(showServer) == strip(showFile))
        let gc = try CLI.run(["gc", "--catalog", server])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(gc.stderr.contains("removed 1 unused tensors"), "\(gc.stderr)")
    }

    @Test func failuresAreClearAndNeverShowThePassword() throws {
        guard let url = Self.serverURL else { throw CatalogError.io("TLKIT_TEST_POSTGRES_URL is not set") }
        let location = try PostgresLocation.parse(url)
        var wrongDatabase = location
        wrongDatabase.database = "tlkit_no_such_database"
        wrongDatabase.password = "s3cret"
        let withPassword = "postgresql://\(location.user):s3cret@:\(location.port)/tlkit_no_such_database?host=\(location.host)"
        let cases: [(String, String)] = [
            ("postgresql://someone:s3cret@127.0.0.1:1/db", "cannot reach the server"),
            (withPassword, "no such database"),
        ]
        for (catalog, message) in cases {
            for arguments in [["list"], ["get", "x", "-o", "-"], ["verify"]] {
                let result = try CLI.run(arguments + ["--catalog", catalog])
                #expect(result.status == (arguments == ["verify"] ? 2 : 1), "\(arguments): \(result.stderr)")
                #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
                #expect(!result.stderr.contains("s3cret"), "the password was echoed: \(result.stderr)")
                #expect(result.stdout.isEmpty)
            }
        }
        #expect(!wrongDatabase.description.contains("s3cret"))
    }

    @Test func initCreatesTheTablesOnceAndTheFirstAddFindsThem() throws {
        let catalog = try Self.newDatabase()
        let location = try PostgresLocation.parse(catalog)
        #expect(try PostgresCatalog.openIfPresent(location) == nil)
        for _ in 0..<2 {
            let result = try CLI.run(["init", "--catalog", catalog])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr == "\(location.description): catalog ready\n")
        }
        let version = try PostgresSession(location).query("SELECT version FROM tlkit_schema").map { try $0.decode(Int.self) }
        #expect(version == [PostgresSchema.version])
        #expect(try CLI.run(["list", "--json", "--catalog", catalog]).stdout.isEmpty)
        let added = try CLI.run(["add", try Self.adapter(3, in: CLI.temporaryFolder()).path, "--name", "first", "--catalog", catalog])
        #expect(added.stdout == "first@1\n", "\(added.stderr)")
    }

    @Test func passwordsComeFromTheURLPGPASSWORDOrThePasswordFileAndAreNeverShown() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["TLKIT_TEST_POSTGRES_PASSWORD_URL"], let password = environment["TLKIT_TEST_POSTGRES_PASSWORD"] else {
            throw CatalogError.io("TLKIT_TEST_POSTGRES_PASSWORD_URL and TLKIT_TEST_POSTGRES_PASSWORD are not set (Scripts/with-postgres.sh sets them)")
        }
        let shown = try PostgresLocation.parse(url).description
        let wrong = try CLI.run(["list", "--catalog", url], environment: ["PGPASSWORD": "wrong-s3cret"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.hasPrefix("tlkit list: \(shown): authentication failed"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("wrong-s3cret"))
        let missing = try CLI.run(["list", "--catalog", url], environment: ["PGPASSWORD": "", "PGPASSFILE": "/nonexistent"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("authentication failed"), "\(missing.stderr)")
        // The right password, from the environment or in the URL: an empty catalog, nothing printed.
        let inURL = url.replacingOccurrences(of: "tlkit_password@", with: "tlkit_password:\(password)@")
        for (catalog, variables) in [(url, ["PGPASSWORD": password]), (inURL, ["PGPASSWORD": ""])] {
            let right = try CLI.run(["list", "--json", "--catalog", catalog], environment: variables)
            #expect(right.status == 0, "\(right.stderr)")
            #expect(right.stdout.isEmpty && right.stderr.isEmpty)
        }
        // Or from a password file.
        let location = try PostgresLocation.parse(url)
        let passfile = CLI.temporaryFolder().appendingPathComponent("pgpass")
        try Data("\(location.host):\(location.port):*:\(location.user):\(password)\n".utf8).write(to: passfile)
        chmod(passfile.path, 0o600)
        let fromFile = try CLI.run(["list", "--json", "--catalog", url], environment: ["PGPASSWORD": "", "PGPASSFILE": passfile.path])
        #expect(fromFile.status == 0 && fromFile.stderr.isEmpty, "\(fromFile.stderr)")
        let failing = try CLI.run(["get", "nothing", "-o", "-", "--catalog", inURL], environment: ["PGPASSWORD": ""])
        #expect(failing.status == 1)
        #expect(failing.stderr.contains(shown) && !failing.stderr.contains(password), "\(failing.stderr)")
    }

    @Test func aCatalogFromANewerTlkitIsRefused() throws {
        let catalog = try Self.newDatabase()
        let folder = CLI.temporaryFolder()
        #expect(try CLI.run(["add", try Self.adapter(1, in: folder).path, "--catalog", catalog]).status == 0)
        try PostgresSession(PostgresLocation.parse(catalog)).query("UPDATE tlkit_schema SET version = \(PostgresSchema.version + 1)")
        for arguments in [["list"], ["add", try Self.adapter(2, in: folder).path], ["init"]] {
            let result = try CLI.run(arguments + ["--catalog", catalog])
            #expect(result.status == 1)
            #expect(result.stderr.contains("newer tlkit"), "\(result.stderr)")
        }
    }

    @Test func aKilledAddLeavesNoHalfEntry() throws {
        let catalog = try Self.newDatabase()
        let folder = CLI.temporaryFolder()
        #expect(try CLI.run(["add", try Self.adapter(1, in: folder).path, "--name", "keep", "--catalog", catalog]).status == 0)
        // A file big enough that the add is still writing when it is killed.
        let big = folder.appendingPathComponent("big.safetensors")
        var data = [UInt8](repeating: 0, count: 48 << 20)
        var state: UInt64 = 1
        data.withUnsafeMutableBytes { bytes in
            for i in stride(from: 0, to: bytes.count, by: 8) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.storeBytes(of: state, toByteOffset: i, as: UInt64.self)
            }
        }
        let json = #"{"noise":{"dtype":"U8","shape":[\#(data.count)],"data_offsets":[0,\#(data.count)]}}"#
        try Data(HostileFiles.safetensors(json, data: data)).write(to: big)
        for delay in [0.3, 0.8] {
            let process = Process()
            process.executableURL = CLI.executable
            process.arguments = ["add", big.path, "--name", "killed", "--catalog", catalog]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let listed = try CLI.run(["list", "--json", "--catalog", catalog])
            #expect(listed.status == 0)
            // Either the add had committed (a whole entry) or nothing of it is visible.
            let killed = listed.stdoutLines.filter { $0.contains(#""name":"killed""#) }
            #expect(listed.stdoutLines.count == 1 + killed.count)
            let verify = try CLI.run(["verify", "--catalog", catalog])
            #expect(verify.status == 0, "\(verify.stderr)")
        }
    }
}

/// The test server, if any.
enum TestServer {
    static let url = ProcessInfo.processInfo.environment["TLKIT_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let enabled = url != nil || ProcessInfo.processInfo.environment["CI"] == "true"
}

/// Lets concurrent iterations write their own slot.
private struct UncheckedResults: @unchecked Sendable {
    let slots: UnsafeMutableBufferPointer<CLI.Result?>
    init(_ slots: UnsafeMutableBufferPointer<CLI.Result?>) { self.slots = slots }
}
