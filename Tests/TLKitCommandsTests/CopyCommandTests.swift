import Foundation
import Testing
@testable import Catalog

/// `tlkit push` and `tlkit pull` as a user runs them: REFs on standard output, the counts in `--json`,
/// byte-identical `get` on the other side, conflicts and bad REFs refused.
@Suite struct CopyCommandTests {
    /// A catalog file with `files` added as versions of `run`.
    static func catalog(_ files: [URL], in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("source.sqlite").path
        for file in files {
            let added = try CLI.run(["add", file.path, "--name", "run", "--tag", "t", "--catalog", path])
            #expect(added.status == 0, "\(added.stderr)")
        }
        return path
    }

    @Test func pushSendsOnlyWhatIsMissingAndPullBringsItBack() throws {
        let folder = CLI.temporaryFolder()
        let files = try (0..<3).map { try PostgresCatalogTests.adapter($0, in: folder) }
        let source = try Self.catalog(files, in: folder)
        let other = folder.appendingPathComponent("other/catalog.sqlite").path

        let first = try CLI.run(["push", "run@1", "run@2", "--to", other, "--json", "--catalog", source])
        #expect(first.status == 0, "\(first.stderr)")
        let report = CLI.json(first.stdout)
        #expect(report["tensors_sent"] as? Int == 3)  // the shared tensor and two of their own
        #expect((report["entries"] as? [[String: Any]])?.map { $0["status"] as? String } == ["copied", "copied"])
        #expect(report["to"] as? String == other)

        // All versions: the two already there send nothing; the third sends its own tensor only.
        let second = try CLI.run(["push", "run", "--all-versions", "--to", other, "--json", "--catalog", source])
        #expect(second.status == 0, "\(second.stderr)")
        let again = CLI.json(second.stdout)
        #expect(again["tensors_sent"] as? Int == 1 && again["tensors_present"] as? Int == 1)
        #expect((again["entries"] as? [[String: Any]])?.map { $0["status"] as? String } == ["present", "present", "copied"])
        let third = try CLI.run(["push", "run", "--all-versions", "--to", other, "--json", "--catalog", source])
        #expect(CLI.json(third.stdout)["tensors_sent"] as? Int == 0)

        // Pull into a third catalog: REFs on standard output, bytes identical, tags kept.
        let mine = folder.appendingPathComponent("mine.sqlite").path
        let pulled = try CLI.run(["pull", "run@3", "--from", other, "--catalog", mine])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(pulled.stdoutLines == ["run@3"])
        let got = try CLI.run(["get", "run@3", "-o", "-", "--catalog", mine])
        #expect(got.stdoutData == (try Data(contentsOf: files[2])))
        #expect(CLI.json(try CLI.run(["show", "run@3", "--json", "--catalog", mine]).stdout)["tags"] as? [String] == ["t"])
        #expect(try CLI.run(["verify", "--catalog", mine]).status == 0)
    }

    @Test func conflictsMissingEntriesAndBadArgumentsAreRefused() throws {
        let folder = CLI.temporaryFolder()
        let files = try (0..<2).map { try PostgresCatalogTests.adapter($0, in: folder) }
        let source = try Self.catalog([files[0]], in: folder)
        let other = folder.appendingPathComponent("other.sqlite").path
        #expect(try CLI.run(["add", files[1].path, "--name", "run", "--catalog", other]).status == 0)

        let conflict = try CLI.run(["push", "run@1", "--to", other, "--catalog", source])
        #expect(conflict.status == 1)
        #expect(conflict.stderr.contains("tlkit push: run@1: the catalog \(other) already has run@1 with other bytes"), "\(conflict.stderr)")
        let missing = try CLI.run(["pull", "nothing", "--from", source, "--catalog", other])
        #expect(missing.status == 1 && missing.stderr.contains("nothing: no such entry"), "\(missing.stderr)")
        // A failed push into a catalog that did not exist leaves none behind.
        let fresh = folder.appendingPathComponent("fresh.sqlite").path
        #expect(try CLI.run(["push", "nothing", "--to", fresh, "--catalog", source]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: fresh))
        #expect(try CLI.run(["push", "--to", other, "--catalog", source]).status == 2)
        #expect(try CLI.run(["push", "run@x", "--to", other, "--catalog", source]).status == 2)
        #expect(try CLI.run(["pull", "run", "--catalog", source]).status == 2)
        #expect(try CLI.run(["push", "run", "--to", source, "--catalog", source]).status == 1)
    }

    @Test(.enabled(if: TestServer.enabled)) func pushAndPullThroughAServerNeverShowThePassword() throws {
        guard let admin = TestServer.url, let url = ProcessInfo.processInfo.environment["TLKIT_TEST_POSTGRES_PASSWORD_URL"],
              let password = ProcessInfo.processInfo.environment["TLKIT_TEST_POSTGRES_PASSWORD"] else {
            Issue.record("the test server's variables are not set (run through Scripts/with-postgres.sh)")
            return
        }
        // A database of the role that must give its password, which is given in the URL.
        let database = "tlkit_copy_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try PostgresSession(PostgresLocation.parse(admin)).query("CREATE DATABASE \(database) OWNER tlkit_password")
        let server = url.replacingOccurrences(of: "tlkit_password@", with: "tlkit_password:\(password)@") + "&dbname=" + database

        let folder = CLI.temporaryFolder()
        let files = try (0..<2).map { try PostgresCatalogTests.adapter($0, in: folder) }
        let source = try Self.catalog(files, in: folder)
        let pushed = try CLI.run(["push", "run", "--all-versions", "--to", server, "--json", "--catalog", source])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        #expect(CLI.json(pushed.stdout)["tensors_sent"] as? Int == 3)
        let again = try CLI.run(["push", "run", "--all-versions", "--to", server, "--json", "--catalog", source])
        #expect(CLI.json(again.stdout)["tensors_sent"] as? Int == 0)

        let back = folder.appendingPathComponent("back.sqlite").path
        let pulled = try CLI.run(["pull", "run@1", "run@2", "--from", server, "--json", "--catalog", back])
        #expect(pulled.status == 0, "\(pulled.stderr)")
        for (i, file) in files.enumerated() {
            let got = try CLI.run(["get", "run@\(i + 1)", "-o", "-", "--catalog", back])
            #expect(got.stdoutData == (try Data(contentsOf: file)))
        }
        for result in [pushed, again, pulled] {
            #expect(!result.stdout.contains(password) && !result.stderr.contains(password))
        }
        #expect(CLI.json(pulled.stdout)["from"] as? String == (try PostgresLocation.parse(server).description))
    }
}
