/// A JSON document as values: what commands build for their reports and what the safetensors header
/// parser (SafeTensors' JSONParser) produces. Object members keep their order.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

/// A JSON number as written: the literal text, plus its value as a non-negative integer when it is one.
public struct JSONNumber: Equatable, Sendable {
    public let text: String

    public init(text: String) { self.text = text }
    /// The value when the literal is a plain non-negative integer that fits in UInt64.
    public var unsignedValue: UInt64? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(text)
    }
}

/// JSON text output for headers and reports: escapes as JSON requires, nothing more.
public enum JSONText {
    public static func quote(_ string: String) -> String { JSONWriter.quote(string) }
}

extension JSONValue {
    /// Compact JSON text, object members in their stored order; `escapingSlashes`: see `JSONWriter.quote`.
    public func serialized(escapingSlashes: Bool = false) -> String {
        var out = ByteBuffer()
        write(to: &out, indent: nil, level: 0, escapingSlashes: escapingSlashes)
        return out.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Indented JSON text (two spaces), for human-facing files.
    public func pretty() -> String {
        var out = ByteBuffer()
        write(to: &out, indent: "  ", level: 0, escapingSlashes: false)
        return out.withBytes { String(decoding: $0, as: UTF8.self) }
    }

    private func write(to out: inout ByteBuffer, indent: String?, level: Int, escapingSlashes: Bool) {
        let newline = indent == nil ? "" : "\n"
        let pad = { (n: Int) in String(repeating: indent ?? "", count: n) }
        switch self {
        case .null: out.append("null")
        case let .bool(b): out.append(b ? "true" : "false")
        case let .number(n): out.append(utf8: n.text)
        case let .string(s): JSONWriter.quote(s, escapingSlashes: escapingSlashes, into: &out)
        case let .array(items):
            if items.isEmpty { out.append("[]"); return }
            out.append(utf8: "[" + newline)
            for (i, item) in items.enumerated() {
                out.append(utf8: pad(level + 1))
                item.write(to: &out, indent: indent, level: level + 1, escapingSlashes: escapingSlashes)
                out.append(utf8: (i + 1 < items.count ? "," : "") + newline)
            }
            out.append(utf8: pad(level) + "]")
        case let .object(members):
            if members.isEmpty { out.append("{}"); return }
            out.append(utf8: "{" + newline)
            for (i, (key, value)) in members.enumerated() {
                out.append(utf8: pad(level + 1))
                JSONWriter.quote(key, escapingSlashes: escapingSlashes, into: &out)
                out.append(indent == nil ? ":" : ": ")
                value.write(to: &out, indent: indent, level: level + 1, escapingSlashes: escapingSlashes)
                out.append(utf8: (i + 1 < members.count ? "," : "") + newline)
            }
            out.append(utf8: pad(level) + "}")
        }
    }

    public static func int(_ value: Int) -> JSONValue { .number(JSONNumber(text: String(value))) }

    /// A finite double as JSON (shortest round-trip text); NaN and infinities become null.
    public static func double(_ value: Double) -> JSONValue {
        guard value.isFinite else { return .null }
        if value == value.rounded(), abs(value) < 1e15 { return .number(JSONNumber(text: String(Int(value)))) }
        return .number(JSONNumber(text: "\(value)"))
    }

    public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
}
