import Adapters
import Foundation

/// An adapter on the command line: a path, `-`, or a catalog reference, optionally with `:WEIGHT`.
/// The whole argument is tried as a path first, so paths containing ':' still work.
struct AdapterArgument {
    let reference: String
    let weight: Double?

    init(_ argument: String) {
        if argument == "-" || FileManager.default.fileExists(atPath: argument) {
            reference = argument
            weight = nil
        } else if let colon = argument.lastIndex(of: ":"), let w = Double(argument[argument.index(after: colon)...]) {
            reference = String(argument[..<colon])
            weight = w
        } else {
            reference = argument
            weight = nil
        }
    }

    /// Reads the adapter this argument names.
    func read(flags: ScheduleFlags = ScheduleFlags()) throws -> Adapter {
        do { return try AdapterReader.read(reference, flags: flags) } catch {
            if !FileManager.default.fileExists(atPath: reference), reference != "-" {
                throw CommandFailure("\(reference): no such file")
            }
            throw CommandFailure("\(error)")
        }
    }
}
