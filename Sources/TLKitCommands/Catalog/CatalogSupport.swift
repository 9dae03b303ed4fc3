import ArgumentParser
import Catalog
import Foundation
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
    func adding<T>(_ body: (any CatalogStore) throws -> T) throws -> T {
        let location = resolved
        let existed = CatalogStores.exists(location)
        do {
            return try body(try CatalogStores.open(location, create: true))
        } catch {
            if !existed { CatalogStores.discardIfEmpty(location) }
            throw error
        }
    }
}

/// Output helpers and the common error handling of the catalog commands.
enum CatalogCLI {
    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func info(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

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

    /// Runs `body`; a failure is printed as `tlkit COMMAND: message` and exits with `failureCode`
    /// (1 for most commands, 2 for `verify` whose 1 means "corrupt").
    static func run(_ command: String, failureCode: Int32 = 1, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            CatalogCLI.error("tlkit \(command): \(MappedInputs.explain(error))")
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

/// JSON written straight into a byte buffer, keys in the order given: `list --json` prints one
/// object per entry, tens of thousands of them, into one buffer written at once.
struct JSONWriter: ~Copyable {
    private(set) var bytes = ByteBuffer()
    /// Whether the object being written has no member yet.
    private var empty = true

    init(capacity: Int = 256) { bytes.reserve(capacity) }

    mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        empty = true
    }

    mutating func endObject() { bytes.append(UInt8(ascii: "}")) }

    mutating func newline() { bytes.append(0x0A) }

    /// `"key":`, preceded by a comma unless it is the object's first member. Keys are plain ASCII.
    private mutating func key(_ key: StaticString) {
        bytes.reserve(key.utf8CodeUnitCount + 4)
        if !empty { bytes.appendReserved(UInt8(ascii: ",")) }
        empty = false
        bytes.appendReserved(UInt8(ascii: "\""))
        bytes.appendReserved(UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.appendReserved(UInt8(ascii: "\""))
        bytes.appendReserved(UInt8(ascii: ":"))
    }

    private mutating func null() { bytes.append("null") }

    mutating func add(_ key: StaticString, _ value: String?) {
        self.key(key)
        if let value { JSONWriter.quote(value, into: &bytes) } else { null() }
    }

    mutating func add(_ key: StaticString, _ value: Int?) {
        self.key(key)
        if let value { JSONWriter.integer(value, into: &bytes) } else { null() }
    }

    mutating func add(_ key: StaticString, _ values: [String]) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.quote(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A member whose value is JSON text already.
    mutating func add(_ key: StaticString, raw: String) {
        self.key(key)
        var raw = raw
        raw.withUTF8 { bytes.append($0) }
    }

    var text: String { bytes.withBytes { String(decoding: $0, as: UTF8.self) } }

    static func quote(_ s: String) -> String {
        var out = ByteBuffer()
        quote(s, into: &out)
        return out.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func quote(_ s: String, into out: inout ByteBuffer) {
        var s = s
        s.withUTF8 { quote($0, into: &out) }
    }

    /// A JSON string of UTF-8 bytes: quotes, backslashes and control characters escaped.
    static func quote(_ utf8: UnsafeBufferPointer<UInt8>, into out: inout ByteBuffer) {
        var plain = 0
        while plain < utf8.count, utf8[plain] >= 0x20, utf8[plain] != 0x22, utf8[plain] != 0x5C { plain += 1 }
        out.reserve(plain + 2)
        out.appendReserved(UInt8(ascii: "\""))
        out.appendReserved(UnsafeBufferPointer(rebasing: utf8[0..<plain]))
        if plain < utf8.count {
            for byte in utf8[plain...] {
                switch byte {
                case UInt8(ascii: "\""): out.append("\\\"")
                case UInt8(ascii: "\\"): out.append("\\\\")
                case 0x0A: out.append("\\n")
                case 0x0D: out.append("\\r")
                case 0x09: out.append("\\t")
                case 0..<0x20:
                    out.append("\\u00")
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 15)])
                default: out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Decimal digits of `value`, without going through a String.
    static func integer(_ value: Int, into out: inout ByteBuffer) {
        out.reserve(20)
        if value < 0 { out.appendReserved(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var divisor: UInt = 1
        while magnitude / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            out.appendReserved(UInt8(ascii: "0") + UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        }
    }
}

/// A growable byte buffer appended to through a raw pointer: one capacity check and one copy per
/// append, which is what makes writing megabytes of JSON in small pieces cheap.
struct ByteBuffer: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init() {
        capacity = 64
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `extra` more bytes.
    mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let grown = max(count + extra, 2 * capacity)
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        new.update(from: base, count: count)
        base.deallocate()
        base = new
        capacity = grown
    }

    /// Appends into room made by `reserve`.
    mutating func appendReserved(_ byte: UInt8) {
        base[count] = byte
        count += 1
    }

    mutating func appendReserved(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let start = bytes.baseAddress, !bytes.isEmpty else { return }
        (base + count).update(from: start, count: bytes.count)
        count += bytes.count
    }

    mutating func append(_ byte: UInt8) {
        reserve(1)
        appendReserved(byte)
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(bytes.count)
        appendReserved(bytes)
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

extension EntrySummary {
    /// The members `list --json` prints for an entry and `show --json` starts with.
    func addJSON(to o: inout JSONWriter) {
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
    }
}
