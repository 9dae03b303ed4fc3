import Foundation
import Testing
import TestSupport
@testable import Catalog

/// libpq's URL conventions, read without a server.
@Suite struct PostgresLocationTests {
    @Test func readsEveryPartAndNeverShowsThePassword() throws {
        let full = try PostgresLocation.parse("postgresql://al%40ice:p%3Ass@db.example:6543/lo%20ras?sslmode=require", environment: [:])
        #expect(full == PostgresLocation(host: "db.example", port: 6543, user: "al@ice", database: "lo ras", password: "p:ss", sslMode: .require))
        #expect(full.description == "postgresql://al%40ice@db.example:6543/lo%20ras")
        let socket = try PostgresLocation.parse("postgres://me:secret@/cat?host=/tmp/pg&port=7000", environment: [:])
        #expect(socket.socketPath == "/tmp/pg/.s.PGSQL.7000")
        #expect(socket.description == "postgresql://me@:7000/cat?host=/tmp/pg")
        let v6 = try PostgresLocation.parse("postgresql://u@[::1]:5433/d", environment: [:])
        #expect(v6.host == "::1" && v6.port == 5433 && v6.description == "postgresql://u@[::1]:5433/d")
        for location in [full, socket] { #expect(!location.description.contains("secret") && !location.description.contains("p:ss")) }
    }

    @Test func fillsGapsFromTheEnvironment() throws {
        let environment = ["PGHOST": "envhost", "PGPORT": "5999", "PGUSER": "envuser", "PGDATABASE": "envdb", "PGPASSWORD": "envpw"]
        let bare = try PostgresLocation.parse("postgresql://", environment: environment)
        #expect(bare == PostgresLocation(host: "envhost", port: 5999, user: "envuser", database: "envdb", password: "envpw", sslMode: .prefer))
        // What the URL gives wins; the database defaults to the user's name.
        let given = try PostgresLocation.parse("postgresql://me@h:1/", environment: ["PGUSER": "other", "PGPASSWORD": "pw"])
        #expect(given.user == "me" && given.database == "me" && given.host == "h" && given.port == 1 && given.password == "pw")
    }

    @Test func readsPasswordsFromThePasswordFileAsLibpqDoes() throws {
        let path = SafeTensorsFixture.folder() + "/pgpass"
        let lines = [
            "# comment",
            "other:5432:*:me:not-this-one",
            #"db.example:6543:cat:me:co\:lon\\slash"#,
            "*:*:*:me:fallback",
            "localhost:5432:*:sock:via-socket",
        ]
        SafeTensorsFixture.write(Array(lines.joined(separator: "\n").utf8), to: path)
        chmod(path, 0o600)
        let environment = ["PGPASSFILE": path]
        #expect(try PostgresLocation.parse("postgresql://me@db.example:6543/cat", environment: environment).password == #"co:lon\slash"#)
        #expect(try PostgresLocation.parse("postgresql://me@db.example/cat", environment: environment).password == "fallback")
        #expect(try PostgresLocation.parse("postgresql://nobody@db.example/cat", environment: environment).password == nil)
        // The server's default socket folder counts as localhost.
        let socket = try PostgresLocation.parse("postgresql://sock@/d?host=\(PostgresLocation.defaultSocketFolder)", environment: environment)
        #expect(socket.password == "via-socket")
        // A password given in the URL or the environment wins; a file others may read is ignored.
        #expect(try PostgresLocation.parse("postgresql://me:given@h/d", environment: environment).password == "given")
        #expect(try PostgresLocation.parse("postgresql://me@h/d", environment: environment.merging(["PGPASSWORD": "env"]) { $1 }).password == "env")
        chmod(path, 0o644)
        #expect(try PostgresLocation.parse("postgresql://me@h/d", environment: environment).password == nil)
    }

    @Test func certificateCheckingModesFindTheirCA() throws {
        let given = try PostgresLocation.parse("postgresql://u@db.example/d?sslmode=verify-full&sslrootcert=/etc/ca.pem", environment: [:])
        #expect(given.sslMode == .verifyFull && given.sslRootCert == "/etc/ca.pem")
        let fromEnvironment = try PostgresLocation.parse("postgresql://u@h/d", environment: ["PGSSLMODE": "verify-ca", "PGSSLROOTCERT": "/ca.pem"])
        #expect(fromEnvironment.sslMode == .verifyCA && fromEnvironment.sslRootCert == "/ca.pem")
        // libpq's default place for the CA file; modes that do not check certificates need none.
        let home = try PostgresLocation.parse("postgresql://u@h/d?sslmode=verify-full", environment: ["HOME": "/home/u"])
        #expect(home.sslRootCert == "/home/u/.postgresql/root.crt")
        #expect(try PostgresLocation.parse("postgresql://u@h/d?sslmode=require", environment: ["HOME": "/home/u"]).sslRootCert == nil)
    }

    @Test func refusesWhatItCannotHonour() {
        for url in ["postgresql://h/d?sslmode=verify-everything", "postgresql://h/d?application=x", "postgresql://h:99999/d",
                    "postgresql://h/d?host", "postgresql://[::1/d"] {
            #expect(throws: CatalogError.self, "\(url)") { try PostgresLocation.parse(url, environment: [:]) }
        }
        #expect(throws: CatalogError.unsupportedURL(scheme: "mysql")) { try CatalogStores.open("mysql://u:pw@h/d", create: false) }
    }

    @Test func globsTranslateAsSQLiteReadsThem() {
        #expect(GlobPattern.regex("r?n*") == "^r.n.*$")
        #expect(GlobPattern.regex("a.b+(c)") == #"^a\.b\+\(c\)$"#)
        #expect(GlobPattern.regex("[^a-c]x[]]") == "^[^a-c]x[]]$")
        #expect(GlobPattern.regex("x[") == #"^x\[$"#)
    }
}
