import Adapters
import ArgumentParser
import Catalog
import Foundation

/// An adapter on the command line: a path, `-`, an adapter folder, or a catalog reference (`NAME`,
/// `NAME@VERSION`, `catalog:NAME`), optionally followed by `:WEIGHT` (the factor its ΔW is multiplied
/// by, in `merge` and `sample` alike). The whole argument is tried as a path first, so paths containing
/// ':' still work (docs/contract.md, "Adapter arguments"). A weight must be a finite number within
/// Float32's range (`NonFinitePolicy.isUsableWeight`); anything else is a usage error.
struct AdapterArgument {
    /// How every command's help spells an adapter argument.
    static let syntax = "REF[:WEIGHT]"

    let reference: String
    let weight: Double?

    /// Throws a usage error when what follows the last ':' of something that names a file is not a number.
    init(_ argument: String) throws {
        guard argument != "-", !FileManager.default.fileExists(atPath: argument), let colon = argument.lastIndex(of: ":") else {
            (reference, weight) = (argument, nil)
            return
        }
        let head = String(argument[..<colon]), tail = String(argument[argument.index(after: colon)...])
        if let w = Double(tail) {
            guard NonFinitePolicy.isUsableWeight(w) else {
                throw ValidationError("\(argument): the weight must be a finite number between -3.4e38 and 3.4e38")
            }
            (reference, weight) = (head, w)
        } else if head == "-" || FileManager.default.fileExists(atPath: head) || AdapterArgument.looksLikePath(head) {
            throw ValidationError("\(argument): the weight '\(tail)' is not a number (give \(AdapterArgument.syntax), e.g. \(head):0.5)")
        } else {
            (reference, weight) = (argument, nil)
        }
    }

    /// Whether the argument can only be meant as a path (a folder separator or a file extension).
    static func looksLikePath(_ argument: String) -> Bool {
        !argument.hasPrefix(Reference.catalogPrefix) && (argument.contains("/") || argument.hasSuffix(".safetensors"))
    }

    /// A short name for reports and `merged_from`.
    var label: String { (reference as NSString).lastPathComponent }

    /// Reads the adapter this argument names, from a file or from the catalog at `catalog`, and holds it
    /// to the non-finite policy (nil: the caller does, after deciding whether it computes at all).
    /// `acceptDoRA`: the caller has the base weights DoRA modules need (only `merge --into`).
    func read(flags: ScheduleFlags = ScheduleFlags(), catalog: CatalogOption, policy: NonFinitePolicy?, acceptDoRA: Bool = false) throws -> Adapter {
        func admit(_ adapter: Adapter) throws -> Adapter { try policy.map { try $0.admit(adapter) } ?? adapter }
        let source: AdapterSource
        do { source = AdapterArgument.looksLikePath(reference) ? .file(reference) : try AdapterSource.resolve(reference) } catch {
            throw CommandFailure("\(error)")
        }
        do {
            switch source {
            case let .file(path):
                if let archive = try TorchInput.archive(at: path) {
                    return try admit(AdapterReader.read(file: archive.safeTensors(name: path), path: path, flags: flags, acceptDoRA: acceptDoRA))
                }
                return try admit(AdapterReader.read(path, flags: flags, acceptDoRA: acceptDoRA))
            case let .catalog(ref):
                let file = try catalog.open(create: false).file(ref)
                return try admit(AdapterReader.read(file: file, path: "catalog:\(ref)", flags: flags, acceptDoRA: acceptDoRA))
            }
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}
