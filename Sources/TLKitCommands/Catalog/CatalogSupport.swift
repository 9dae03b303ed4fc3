import ArgumentParser
import Catalog
import Foundation

/// `--catalog PATH`, accepted after every catalog subcommand's name.
struct CatalogOption: ParsableArguments {
    @Option(name: .customLong("catalog"), help: ArgumentHelp(
        "The catalog file (default: $TLKIT_CATALOG, else $XDG_DATA_HOME/tlkit/catalog.sqlite, else ~/.local/share/tlkit/catalog.sqlite).",
        valueName: "PATH"))
    var path: String?

    var resolved: String { CatalogLocation.resolve(explicit: path, environment: ProcessInfo.processInfo.environment) }

    func open(create: Bool) throws -> Catalog { try Catalog.open(at: resolved, create: create) }
}

/// Output helpers and the common error handling of the catalog commands.
enum CatalogCLI {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func info(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Runs `body`; a failure is printed as `tlkit COMMAND: message` and exits with `failureCode`
    /// (1 for most commands, 2 for `verify` whose 1 means "corrupt").
    static func run(_ command: String, failureCode: Int32 = 1, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            CatalogCLI.error("tlkit \(command): \(error)")
            throw ExitCode(failureCode)
        }
    }

    /// Parses a REF argument at validation time, so a malformed one is a usage error (exit 2).
    static func reference(_ text: String) throws -> Reference {
        do { return try Reference.parse(text) } catch { throw ValidationError("\(error)") }
    }

    static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// A JSON object written with keys in the order given (one line, for JSON-lines output).
struct JSONObject {
    private var parts: [String] = []

    mutating func add(_ key: String, _ value: String?) { parts.append("\(JSONObject.quote(key)):\(value.map(JSONObject.quote) ?? "null")") }
    mutating func add(_ key: String, _ value: Int?) { parts.append("\(JSONObject.quote(key)):\(value.map(String.init) ?? "null")") }
    mutating func add(_ key: String, _ values: [String]) { parts.append("\(JSONObject.quote(key)):[\(values.map(JSONObject.quote).joined(separator: ","))]") }
    mutating func add(_ key: String, raw: String) { parts.append("\(JSONObject.quote(key)):\(raw)") }

    var text: String { "{" + parts.joined(separator: ",") + "}" }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

extension EntrySummary {
    /// The JSON object `list --json` prints and `show --json` starts from.
    var json: JSONObject {
        var o = JSONObject()
        o.add("ref", reference.description)
        o.add("name", name)
        o.add("version", version)
        o.add("kind", facts.kind)
        o.add("format", facts.format)
        o.add("base", facts.base)
        o.add("method", facts.method)
        o.add("rank", facts.rank)
        o.add("min_rank", facts.minRank)
        o.add("trigger", facts.trigger)
        o.add("token", facts.token)
        o.add("class", facts.className)
        o.add("steps", facts.steps)
        o.add("tags", tags)
        o.add("note", note)
        o.add("size", size)
        o.add("stored", stored)
        o.add("added_bytes", added)
        o.add("sha256", sha256)
        o.add("hash_sha256", dataHash)
        o.add("tensors", tensorCount)
        o.add("source", source)
        o.add("added", addedAt)
        return o
    }
}
