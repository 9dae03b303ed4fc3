import ArgumentParser
import Catalog
import Foundation
import JSONOutput
import SafeTensors

/// `--catalog PATH`, accepted after every catalog subcommand's name.
struct CatalogOption: ParsableArguments {
    @Option(name: .customLong("catalog"), help: ArgumentHelp(
        "The catalog file, or a postgresql:// URL (default: $TLKIT_CATALOG, else $XDG_DATA_HOME/tlkit/catalog.sqlite, else ~/.local/share/tlkit/catalog.sqlite).",
        valueName: "PATH"))
    var path: String?

    var resolved: String { CatalogLocation.resolve(explicit: path, environment: ProcessInfo.processInfo.environment) }

    func open(create: Bool) throws -> any CatalogStore { try CatalogStores.open(resolved, create: create) }

    /// The catalog, or nil when there is none yet (reading commands then see an empty one).
    func openIfPresent() throws -> (any CatalogStore)? { try CatalogStores.openIfPresent(resolved) }

    /// Opens the catalog to add to it, creating it when missing. When `body` fails, a catalog this call
    /// created is removed again if it holds nothing: a failed command never leaves one behind.
    func adding<T>(_ body: (any CatalogStore) throws -> T) throws -> T { try CatalogOption.adding(at: resolved, body) }

    /// `adding` for the catalog at `location` (the destination of a `push`).
    static func adding<T>(at location: String, _ body: (any CatalogStore) throws -> T) throws -> T {
        let existed = CatalogStores.exists(location)
        do {
            return try body(try CatalogStores.open(location, create: true))
        } catch {
            if !existed { CatalogStores.discardIfEmpty(location) }
            throw error
        }
    }
}

/// Output helpers and the common error handling of the catalog commands (messages go through `Console`).
enum CatalogCLI {
    /// Writes `bytes` to standard output in as few system calls as the pipe allows.
    static func writeStandardOutput(_ bytes: borrowing ByteBuffer) throws {
        try bytes.withBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(1, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CommandFailure("cannot write to standard output: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    /// Runs `body`; a failure becomes a `CommandFailure` naming the command, which the entry point
    /// prints as `tlkit COMMAND: message` and exits with `failureCode` (1 for most commands, 2 for
    /// `verify` whose 1 means "corrupt").
    static func run(_ command: String, failureCode: Int32 = 1, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CommandFailure("\(MappedInputs.explain(error))", exitCode: failureCode, command: command)
        }
    }

    /// Parses a REF argument at validation time, so a malformed one is a usage error (exit 2).
    static func reference(_ text: String) throws -> Reference {
        do { return try Reference.parse(text) } catch { throw ValidationError("\(error)") }
    }

    /// Rows as aligned columns (two spaces apart, no trailing spaces), one line each.
    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
        var out = ""
        for row in rows {
            var line = ""
            for (cell, width) in zip(row, widths) {
                if !line.isEmpty { line += "  " }
                line += cell
                line += String(repeating: " ", count: width - cell.count)
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(n) B" : "\(oneDecimal(value)) \(units[unit])"
    }

    /// `value` (not negative) with one decimal, exactly as printf's `%.1f` writes it (nearest, ties to
    /// even, on the exact binary value), without Foundation's formatter: `list` formats two sizes per
    /// entry, and String(format:) took half of its time on a large catalog.
    static func oneDecimal(_ value: Double) -> String {
        let scaled = value * 10
        // The rounding error of the product, exactly: it decides only when the product looks like a tie.
        let error = (-scaled).addingProduct(value, 10)
        var tenths = scaled.rounded(.toNearestOrEven)
        if scaled - scaled.rounded(.down) == 0.5 {
            if error > 0 { tenths = scaled.rounded(.up) } else if error < 0 { tenths = scaled.rounded(.down) }
        }
        let t = Int(tenths)
        return "\(t / 10).\(t % 10)"
    }
}

extension EntrySummary {
    /// The members `list --json` prints for an entry and `show --json` starts with.
    func addJSON(to o: inout JSONWriter, sshsModelHash: String? = nil) {
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
        o.add("family", facts.family)
        o.add("derivative", facts.derivative)
        if let words = facts.triggerWords { o.add("trigger_words", words) } else { o.add("trigger_words", raw: "null") }
        o.add("autov2", autoV2)
        o.add("autov3", autoV3)
        o.add("sshs_model_hash", sshsModelHash ?? facts.sshsModelHash)
    }

    /// civitai's AutoV2: the first 10 hex digits of the whole file's SHA-256.
    var autoV2: String { String(sha256.prefix(10)) }

    /// civitai's AutoV3: the SHA-256 of the file after its header (the 8-byte length and the JSON), i.e.
    /// of the tensor data alone, which metadata edits leave unchanged; the same digest as the addnet
    /// hash. civitai shows its first 12 digits. docs/catalog-library.md says where the definition comes from.
    var autoV3: String { dataHash.hasPrefix("0x") ? String(dataHash.dropFirst(2)) : dataHash }
}
