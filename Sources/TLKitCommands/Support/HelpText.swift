import ArgumentParser

/// One example of a help page: what it does, then the command line.
typealias Example = (what: String, command: String)

/// A subcommand whose help ends with EXAMPLES, as git's and zstd's man pages do. ArgumentParser has no
/// place after the options for them, so `runTLKit` appends them to a help request's output, and
/// Scripts/update-manpages.sh copies them from there into the man pages. (Help text is ASCII: the man
/// page generator drops every other character.)
protocol HasExamples: ParsableCommand {
    static var examples: [Example] { get }
}

extension TrainCommand: HasExamples {}
extension SampleCommand: HasExamples {}
extension InspectCommand: HasExamples {}
extension ConvertCommand: HasExamples {}
extension MergeCommand: HasExamples {}
extension DiffCommand: HasExamples {}
extension ResizeCommand: HasExamples {}
extension ExtractCommand: HasExamples {}
extension AddCommand: HasExamples {}
extension ListCommand: HasExamples {}
extension ShowCommand: HasExamples {}
extension GetCommand: HasExamples {}
extension RmCommand: HasExamples {}
extension TagCommand: HasExamples {}
extension UntagCommand: HasExamples {}
extension VerifyCommand: HasExamples {}
extension GcCommand: HasExamples {}
extension InitCommand: HasExamples {}

/// What `tlkit help SUB` and `tlkit SUB --help` add to ArgumentParser's help, and which topics exist.
enum HelpRequest {
    static func subcommand(named name: String) -> (any ParsableCommand.Type)? {
        TLKit.configuration.subcommands.first { $0._commandName == name }
    }

    /// The subcommand a help request is about: `help SUB`, or `SUB ... --help`.
    static func topic(of arguments: [String]) -> (any ParsableCommand.Type)? {
        guard let first = arguments.first else { return nil }
        if first == "help" { return arguments.dropFirst().first.flatMap(subcommand(named:)) }
        return arguments.contains("--help") || arguments.contains("-h") ? subcommand(named: first) : nil
    }

    /// `tlkit help NAME` for a NAME that is no subcommand (ArgumentParser shows the root help, exit 0).
    static func unknownTopic(in arguments: [String]) -> String? {
        guard arguments.first == "help", let name = arguments.dropFirst().first, !name.hasPrefix("-"), name != "help",
              subcommand(named: name) == nil else { return nil }
        return name
    }

    /// The EXAMPLES section of a subcommand's help.
    static func examples(of command: any ParsableCommand.Type) -> String? {
        guard let documented = command as? any HasExamples.Type else { return nil }
        return "EXAMPLES:\n" + documented.examples.map { "  \($0.what):\n    \($0.command)" }.joined(separator: "\n")
    }
}
