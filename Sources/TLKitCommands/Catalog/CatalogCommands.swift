import ArgumentParser

/// The catalog subcommands, for the root `tlkit` command to include.
let catalogSubcommands: [any ParsableCommand.Type] = [
    InitCommand.self, AddCommand.self, ListCommand.self, ShowCommand.self, GetCommand.self, RmCommand.self,
    TagCommand.self, UntagCommand.self, VerifyCommand.self, GcCommand.self, DupsCommand.self,
    PushCommand.self, PullCommand.self,
]
