import Foundation
import Testing

/// Help, man pages and option spellings: what a user reads is complete, and alike across commands.
struct HelpTests {
    static func subcommands() throws -> [[String: Any]] {
        let dump = CLI.json(try CLI.run(["--experimental-dump-help"]).stdout)
        return ((dump["command"] as? [String: Any])?["subcommands"] as? [[String: Any]] ?? []).filter { $0["commandName"] as? String != "help" }
    }

    static func arguments(_ command: [String: Any]) -> [[String: Any]] { command["arguments"] as? [[String: Any]] ?? [] }

    static func names(_ argument: [String: Any]) -> [String] {
        (argument["names"] as? [[String: Any]] ?? []).compactMap { n in (n["name"] as? String).map { "\(n["kind"] as? String ?? ""):\($0)" } }
    }

    static func page(_ name: String) throws -> String {
        try String(contentsOf: CLI.repositoryRoot.appendingPathComponent("Manpages/\(name).1"), encoding: .utf8)
    }

    /// The man page generator drops every non-ASCII character, so the help text is ASCII throughout.
    @Test func manPagesLoseNoCharacter() throws {
        let dump = try CLI.run(["--experimental-dump-help"]).stdoutData
        let foreign = String(decoding: dump, as: UTF8.self).unicodeScalars.filter { !$0.isASCII }
        #expect(foreign.isEmpty, "non-ASCII help text: \(String(String.UnicodeScalarView(foreign.prefix(20))))")
        #expect(try Self.page("tlkit.convert").contains("r(t) = floor(((T - t)/T)^alpha * (R - r_min)) + r_min"))
    }

    @Test func exitStatusSectionsGiveEachCommandsCodes() throws {
        let pages = try FileManager.default.contentsOfDirectory(atPath: CLI.repositoryRoot.appendingPathComponent("Manpages").path)
            .filter { $0.hasSuffix(".1") }
        #expect(pages.count > 10)
        for name in pages {
            let text = try Self.page(String(name.dropLast(2)))
            #expect(!text.contains(".Ex -std"), "\(name) has the generic exit status")
        }
        #expect(try Self.page("tlkit.diff").contains("0 when the adapters are equal within the tolerance, 1 when they differ, 2 on error"))
        #expect(try Self.page("tlkit.verify").contains("0 when every entry checked is intact, 1 when one is corrupt, 2 on error"))
        #expect(try Self.page("tlkit.convert").contains("2 on a usage error"))
    }

    /// The man page generator shows no defaults: every option that has one says it in its help text.
    @Test func defaultsAreShown() throws {
        for command in try Self.subcommands() {
            for argument in Self.arguments(command) where argument["kind"] as? String == "option" && argument["defaultValue"] != nil {
                let help = argument["abstract"] as? String ?? ""
                #expect(help.contains("default"), "\(command["commandName"] ?? "") \(Self.names(argument)): default not in '\(help)'")
            }
        }
        #expect(try Self.page("tlkit.diff").contains("(default: 1e-06)"))
        #expect(try Self.page("tlkit.sample").contains("(default: 25)"))
    }

    @Test func everyOutputIsDashOAndDashDashOutput() throws {
        var withOutput: [String] = []
        for command in try Self.subcommands() {
            for argument in Self.arguments(command) where Self.names(argument).contains("long:output") {
                withOutput.append(command["commandName"] as? String ?? "")
                #expect(Self.names(argument).contains("short:o"), "\(command["commandName"] ?? ""): --output without -o")
            }
            for argument in Self.arguments(command) where Self.names(argument).contains("short:o") {
                #expect(Self.names(argument).contains("long:output"), "\(command["commandName"] ?? ""): -o without --output")
            }
        }
        for name in ["train", "get", "convert", "merge", "resize", "extract", "sample"] {
            #expect(withOutput.contains(name), "\(name) has no -o/--output")
        }
    }

    @Test func adapterWeightsAreSpelledAlike() throws {
        let commands = Dictionary(uniqueKeysWithValues: try Self.subcommands().map { ($0["commandName"] as? String ?? "", $0) })
        let merge = Self.arguments(commands["merge"]!).first { $0["kind"] as? String == "positional" }
        let sample = Self.arguments(commands["sample"]!).first { Self.names($0).contains("long:adapter") }
        #expect(merge?["valueName"] as? String == "REF[:WEIGHT]")
        #expect(sample?["valueName"] as? String == "REF[:WEIGHT]")
        #expect(!(try CLI.run(["--experimental-dump-help"]).stdout.contains("SCALE]")))
    }

    @Test func negativeNumbersReachTheRangeCheck() throws {
        let out = CLI.temporaryFolder().appendingPathComponent("o.safetensors").path
        let adapter = CLI.fixture("adapters/peft")
        for arguments in [["convert", adapter, "--to", "kohya", "--rank", "-3", "-o", out],
                          ["merge", adapter, "--method", "svd", "--rank", "-3", "-o", out],
                          ["resize", adapter, "--rank", "-3", "-o", out],
                          ["train", "--model", TrainTests.model, "--image", TrainTests.image, "--class", "mug", "-o", out, "--rank", "-3"]] {
            let result = try CLI.run(arguments)
            #expect(result.status == 2, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.contains("--rank must be at least 1") && !result.stderr.contains("Missing value"), "\(arguments[0]): \(result.stderr)")
        }
    }

    @Test func helpForAnUnknownCommandIsAUsageError() throws {
        let unknown = try CLI.run(["help", "nosuch"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("nosuch"), "\(unknown.stderr)")
        #expect(try CLI.run(["help", "convert"]).status == 0)
    }

    /// Every subcommand's help ends with two or three examples (pipelines among them), and its man page
    /// carries the same ones.
    @Test func everySubcommandHelpEndsWithExamples() throws {
        var pipelines = 0
        for command in try Self.subcommands() {
            let name = command["commandName"] as? String ?? ""
            let help = try CLI.run([name, "--help"])
            #expect(help.status == 0)
            #expect(try CLI.run(["help", name]).stdout == help.stdout, "help \(name) differs from \(name) --help")
            guard let range = help.stdout.range(of: "\nEXAMPLES:\n", options: .backwards) else {
                Issue.record("\(name) --help has no EXAMPLES")
                continue
            }
            let commands = help.stdout[range.upperBound...].split(separator: "\n").filter { $0.hasPrefix("    ") }
                .map { $0.trimmingCharacters(in: .whitespaces) }
            #expect((2...3).contains(commands.count), "\(name): \(commands.count) examples")
            let page = try Self.page("tlkit.\(name)")
            for line in commands {
                #expect(line.hasPrefix("tlkit ") || line.contains("| tlkit "), "\(name): \(line)")
                #expect(page.contains(line), "the man page of \(name) lacks '\(line)' (run Scripts/update-manpages.sh)")
                if line.contains("| ") { pipelines += 1 }
            }
        }
        #expect(pipelines >= 5)
    }
}
