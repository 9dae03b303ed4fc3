import ArgumentParser
import Foundation

/// The catalog subcommands, for the root `tlkit` command to include.
public let catalogSubcommands: [any ParsableCommand.Type] = [
    InitCommand.self, AddCommand.self, ListCommand.self, ShowCommand.self, GetCommand.self, RmCommand.self,
    TagCommand.self, UntagCommand.self, VerifyCommand.self, GcCommand.self,
]

/// A root holding only the catalog subcommands (used to run them on their own, e.g. in tests).
public struct CatalogTool: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tlkit", abstract: "The tlkit adapter catalog.", subcommands: catalogSubcommands)

    public init() {}

    /// Parses `arguments` and runs the subcommand; returns the exit status, with ArgumentParser's usage
    /// errors (EX_USAGE) reported as 2 as the rest of tlkit does.
    public static func run(arguments: [String]) -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            return 0
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                return 0
            }
            if !(error is ExitCode) {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            }
            return code == .validationFailure ? 2 : code.rawValue
        }
    }
}
