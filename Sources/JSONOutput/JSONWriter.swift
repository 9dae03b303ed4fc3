/// JSON written straight into a byte buffer, keys in the order given: `list --json` prints one
/// object per entry, tens of thousands of them, into one buffer written at once. Its quoting is the
/// one string escape of all JSON tlkit writes (`JSONValue`, safetensors headers).
public struct JSONWriter: ~Copyable {
    public private(set) var bytes = ByteBuffer()
    /// Whether the object being written has no member yet.
    private var empty = true

    public init(capacity: Int = 256) { bytes.reserve(capacity) }

    public mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        empty = true
    }

    public mutating func endObject() { bytes.append(UInt8(ascii: "}")) }

    public mutating func newline() { bytes.append(0x0A) }

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

    public mutating func add(_ key: StaticString, _ value: String?) {
        self.key(key)
        if let value { JSONWriter.quote(value, into: &bytes) } else { null() }
    }

    public mutating func add(_ key: StaticString, _ value: Int?) {
        self.key(key)
        if let value { JSONWriter.integer(value, into: &bytes) } else { null() }
    }

    public mutating func add(_ key: StaticString, _ values: [String]) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.quote(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A member whose value is JSON text already.
    public mutating func add(_ key: StaticString, raw: String) {
        self.key(key)
        var raw = raw
        raw.withUTF8 { bytes.append($0) }
    }

    public var text: String { bytes.withBytes { String(decoding: $0, as: UTF8.self) } }

    public static func quote(_ s: String) -> String {
        var out = ByteBuffer()
        quote(s, into: &out)
        return out.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    public static func quote(_ s: String, escapingSlashes: Bool = false, into out: inout ByteBuffer) {
        var s = s
        s.withUTF8 { quote($0, escapingSlashes: escapingSlashes, into: &out) }
    }

    /// A JSON string of UTF-8 bytes: quotes, backslashes and control characters escaped. `escapingSlashes`
    /// also writes the optional escapes `\/`, `\b` and `\f`, as `train --json` has always written its lines.
    public static func quote(_ utf8: UnsafeBufferPointer<UInt8>, escapingSlashes: Bool = false, into out: inout ByteBuffer) {
        var plain = 0
        while plain < utf8.count, utf8[plain] >= 0x20, utf8[plain] != 0x22, utf8[plain] != 0x5C,
              !(escapingSlashes && utf8[plain] == UInt8(ascii: "/")) { plain += 1 }
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
                case UInt8(ascii: "/") where escapingSlashes: out.append("\\/")
                case 0x08 where escapingSlashes: out.append("\\b")
                case 0x0C where escapingSlashes: out.append("\\f")
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
    public static func integer(_ value: Int, into out: inout ByteBuffer) {
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
