// Runs the catalog subcommands on their own, so tests can spawn, kill and race real processes.
import Foundation
import TLKitCommands

configureProcess()
exit(CatalogTool.run(arguments: Array(CommandLine.arguments.dropFirst())))
