import ArgumentParser

/// The root command. Subcommands live one per file; they parse, call the libraries and print.
public struct TLKit: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tlkit",
        abstract: "T-LoRA fine-tuning of SDXL on CPU, and tools for LoRA adapters.",
        discussion: """
        Adapters are read from paths, '-' (standard input) or catalog references. Outputs are written to a \
        temporary file and renamed into place. Exit codes: 0 success, 1 runtime failure, 2 usage error \
        (diff and verify: 0 equal or intact, 1 different or corrupt, 2 error); 130/143 when interrupted.
        """,
        version: TLKitVersion.string,
        subcommands: [TrainCommand.self, SampleCommand.self, InspectCommand.self, ConvertCommand.self, MergeCommand.self, DiffCommand.self, ResizeCommand.self, ExtractCommand.self] + catalogSubcommands
    )

    public init() {}
}

public enum TLKitVersion {
    public static let string = "0.1.0"
}
