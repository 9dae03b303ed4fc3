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

/// A JSON object written with keys in the order given (one line, for JSON-lines output), built as
/// UTF-8 bytes: `list --json` prints thousands of them.
struct JSONObject {
    private(set) var bytes: [UInt8] = []

    private mutating func key(_ key: String) {
        bytes.append(bytes.isEmpty ? UInt8(ascii: "{") : UInt8(ascii: ","))
        JSONObject.quote(key, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    private mutating func null() { bytes += [0x6E, 0x75, 0x6C, 0x6C] }

    mutating func add(_ key: String, _ value: String?) {
        self.key(key)
        if let value { JSONObject.quote(value, into: &bytes) } else { null() }
    }

    mutating func add(_ key: String, _ value: Int?) {
        self.key(key)
        if let value { bytes += String(value).utf8 } else { null() }
    }

    mutating func add(_ key: String, _ values: [String]) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONObject.quote(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func add(_ key: String, raw: String) { self.key(key); bytes += raw.utf8 }

    /// The object's closing brace appended (an empty object when nothing was added).
    var closed: [UInt8] { bytes.isEmpty ? Array("{}".utf8) : bytes + [UInt8(ascii: "}")] }

    var text: String { String(decoding: closed, as: UTF8.self) }

    static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        quote(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func quote(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var plain = true
        for byte in s.utf8 where byte < 0x20 || byte == 0x22 || byte == 0x5C { plain = false; break }
        if plain {
            out += s.utf8
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [0x5C, 0x22]
            case UInt8(ascii: "\\"): out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20: out += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
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
