import Foundation
import Testing
@testable import Catalog

/// Who may do what on a server's catalog (`init --reader/--writer`, enforced by PostgreSQL), and TLS
/// with a checked certificate (the test server's throwaway CA, Scripts/with-postgres.sh).
@Suite(.enabled(if: TestServer.enabled)) struct PostgresAccessTests {
    static let environment = ProcessInfo.processInfo.environment

    @Test func aReaderOnlyReadsAndAWriterWrites() throws {
        let catalog = try PostgresCatalogTests.newDatabase()
        let folder = CLI.temporaryFolder()
        let files = try (0..<3).map { try PostgresCatalogTests.adapter($0, in: folder) }
        #expect(try CLI.run(["add", files[0].path, "--name", "seed", "--tag", "kept", "--catalog", catalog]).status == 0)
        // Roles belong to the whole server: names of their own.
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        let reader = "tlkit_reader_\(suffix)", writer = "tlkit_writer_\(suffix)"
        let admin = try PostgresSession(PostgresLocation.parse(catalog))
        try admin.query("CREATE ROLE \(reader) LOGIN")
        try admin.query("CREATE ROLE \(writer) LOGIN")
        let granted = try CLI.run(["init", "--catalog", catalog, "--reader", reader, "--writer", writer])
        #expect(granted.status == 0, "\(granted.stderr)")
        let asReader = catalog + "&user=" + reader, asWriter = catalog + "&user=" + writer

        // The reader lists, shows, gets and verifies.
        let listed = try CLI.run(["list", "--json", "--catalog", asReader])
        #expect(listed.status == 0 && listed.stdout.contains("\"seed@1\""), "\(listed.stderr)")
        #expect(try CLI.run(["show", "seed", "--catalog", asReader]).status == 0)
        let got = try CLI.run(["get", "seed", "-o", "-", "--catalog", asReader])
        #expect(try got.status == 0 && got.stdoutData == Data(contentsOf: files[0]), "\(got.stderr)")
        #expect(try CLI.run(["verify", "--catalog", asReader]).status == 0)

        // Every change is refused by the server, with a clear message, and changes nothing.
        for change in [["add", files[1].path, "--name", "other"], ["rm", "seed"], ["tag", "seed", "new"], ["untag", "seed", "kept"], ["gc"]] {
            let refused = try CLI.run(change + ["--catalog", asReader])
            #expect(refused.status == 1, "\(change): \(refused.stderr)")
            #expect(refused.stderr.contains("permission denied") && refused.stderr.contains("the role '\(reader)' may not do this"), "\(change): \(refused.stderr)")
        }
        let local = folder.appendingPathComponent("local.sqlite").path
        #expect(try CLI.run(["add", files[2].path, "--name", "pushed", "--catalog", local]).status == 0)
        let pushed = try CLI.run(["push", "pushed", "--to", asReader, "--catalog", local])
        #expect(pushed.status == 1 && pushed.stderr.contains("permission denied"), "\(pushed.stderr)")
        let after = try CatalogStores.open(catalog, create: false)
        #expect(try after.list(filter: ListFilter()).map(\.reference.description) == ["seed@1"])
        #expect(try after.entry(Reference(name: "seed")).summary.tags == ["kept"])

        // The writer adds, tags, removes and collects.
        let added = try CLI.run(["add", files[1].path, "--name", "other", "--catalog", asWriter])
        #expect(added.status == 0 && added.stdout == "other@1\n", "\(added.stderr)")
        for change in [["tag", "other", "new"], ["untag", "other", "new"], ["rm", "other"], ["gc"]] {
            let done = try CLI.run(change + ["--catalog", asWriter])
            #expect(done.status == 0, "\(change): \(done.stderr)")
        }
        #expect(try CLI.run(["verify", "--catalog", asReader]).status == 0)

        // A role that does not exist is named; nothing is granted.
        let missing = try CLI.run(["init", "--catalog", catalog, "--reader", "tlkit_no_such_role", "--writer", writer])
        #expect(missing.status == 1 && missing.stderr.contains("the role 'tlkit_no_such_role' does not exist"), "\(missing.stderr)")
        // The tables' owner cannot be made a reader: the server would let it write anyway.
        let owner = try CLI.run(["init", "--catalog", catalog, "--reader", "tlkit"])
        #expect(owner.status == 1, "\(owner.stderr)")
        // Roles are a server's: a catalog file refuses them as a usage error.
        #expect(try CLI.run(["init", "--catalog", folder.appendingPathComponent("c.sqlite").path, "--reader", reader]).status == 2)
    }

    @Test func tlsWithTheServersCertificateCheckedOrNot() throws {
        guard let admin = TestServer.url, let tls = Self.environment["TLKIT_TEST_POSTGRES_TLS_URL"], let ca = Self.environment["TLKIT_TEST_POSTGRES_CA"],
              let otherCA = Self.environment["TLKIT_TEST_POSTGRES_OTHER_CA"], let password = Self.environment["TLKIT_TEST_POSTGRES_PASSWORD"] else {
            Issue.record("the test server's TLS variables are not set (run through Scripts/with-postgres.sh)")
            return
        }
        let database = "tlkit_tls_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try PostgresSession(PostgresLocation.parse(admin)).query("CREATE DATABASE \(database) OWNER tlkit_password")
        let base = tls.replacingOccurrences(of: "/postgres", with: "/" + database)
        let withPassword = ["PGPASSWORD": password]
        let folder = CLI.temporaryFolder()
        for (i, mode) in ["sslmode=require", "sslmode=verify-ca&sslrootcert=\(ca)", "sslmode=verify-full&sslrootcert=\(ca)"].enumerated() {
            let url = base + "?" + mode
            let file = try PostgresCatalogTests.adapter(i, in: folder)
            let added = try CLI.run(["add", file.path, "--name", "tls\(i)", "--catalog", url], environment: withPassword)
            #expect(added.status == 0, "\(mode): \(added.stderr)")
            let got = try CLI.run(["get", "tls\(i)", "-o", "-", "--catalog", url], environment: withPassword)
            #expect(got.stdoutData == (try Data(contentsOf: file)), "\(mode): \(got.stderr)")
        }
        // The connection is encrypted, as the server sees it.
        let checked = try PostgresSession(PostgresLocation.parse(base + "?sslmode=verify-full&sslrootcert=\(ca)",
                                                                 environment: Self.environment.merging(withPassword) { $1 }))
        #expect(try checked.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].decode(Bool.self))

        // A certificate the given CA did not sign is refused, clearly, before any password is sent.
        let refused = try CLI.run(["list", "--catalog", base + "?sslmode=verify-full&sslrootcert=\(otherCA)"], environment: withPassword)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the server's certificate was not accepted (sslmode=verify-full, sslrootcert=\(otherCA))"), "\(refused.stderr)")
        let verifyCA = try CLI.run(["list", "--catalog", base + "?sslmode=verify-ca&sslrootcert=\(otherCA)"], environment: withPassword)
        #expect(verifyCA.status == 1 && verifyCA.stderr.contains("certificate was not accepted"), "\(verifyCA.stderr)")
        let noFile = try CLI.run(["list", "--catalog", base + "?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"], environment: withPassword)
        #expect(noFile.status == 1 && noFile.stderr.contains("'/nonexistent/ca.crt' does not exist"), "\(noFile.stderr)")
        for result in [refused, verifyCA, noFile] { #expect(!result.stderr.contains(password) && !result.stdout.contains(password)) }
    }
}
