import Adapters
import Catalog
import Foundation

/// An adapter on the command line: a path, `-`, an adapter folder, or a catalog reference (`NAME`,
/// `NAME@VERSION`, `catalog:NAME`), optionally followed by `:WEIGHT`. The whole argument is tried as a
/// path first, so paths containing ':' still work (docs/contract.md, "Adapter arguments").
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

    /// Whether the argument can only be meant as a path (a folder separator or a file extension).
    static func looksLikePath(_ argument: String) -> Bool {
        !argument.hasPrefix(Reference.catalogPrefix) && (argument.contains("/") || argument.hasSuffix(".safetensors"))
    }

    /// A short name for reports and `merged_from`.
    var label: String { (reference as NSString).lastPathComponent }

    /// Reads the adapter this argument names, from a file or from the catalog at `catalog`.
    func read(flags: ScheduleFlags = ScheduleFlags(), catalog: CatalogOption) throws -> Adapter {
        let source: AdapterSource
        do { source = AdapterArgument.looksLikePath(reference) ? .file(reference) : try AdapterSource.resolve(reference) } catch {
            throw CommandFailure("\(error)")
        }
        do {
            switch source {
            case let .file(path):
                return try AdapterReader.read(path, flags: flags)
            case let .catalog(ref):
                let file = try catalog.open(create: false).file(ref)
                return try AdapterReader.read(file: file, path: "catalog:\(ref)", flags: flags)
            }
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}
