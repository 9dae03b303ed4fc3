import Foundation
import Testing

/// Manpages/ is generated from the argument parser by Scripts/update-manpages.sh, which also records the
/// interface it described; when the built tool's interface differs, the pages are stale.
struct ManpageTests {
    @Test func manPagesMatchTheCommandLineInterface() throws {
        let recorded = try String(contentsOf: CLI.repositoryRoot.appendingPathComponent("Manpages/tlkit.interface.json"), encoding: .utf8)
        let current = try CLI.run(["--experimental-dump-help"])
        #expect(current.status == 0)
        let same = current.stdout == recorded
        #expect(same, "Manpages/ is stale: run Scripts/update-manpages.sh and commit the result")
    }

    @Test func everySubcommandHasAPage() throws {
        let dump = CLI.json(try CLI.run(["--experimental-dump-help"]).stdout)
        let command = dump["command"] as? [String: Any] ?? [:]
        let subcommands = (command["subcommands"] as? [[String: Any]] ?? []).compactMap { $0["commandName"] as? String }
        #expect(!subcommands.isEmpty)
        for name in subcommands where name != "help" {
            let page = CLI.repositoryRoot.appendingPathComponent("Manpages/tlkit.\(name).1").path
            #expect(FileManager.default.fileExists(atPath: page), "missing man page for \(name)")
        }
    }
}
