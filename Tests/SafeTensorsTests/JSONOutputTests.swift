import JSONOutput
import Testing
@testable import SafeTensors

/// The text `JSONValue` writes, exactly: reports, `--json` lines and headers depend on these bytes.
struct JSONOutputTests {
    static let document = JSONValue.object([
        ("text", .string("q\" b\\ n\n r\r t\t ctl\u{01}\u{1F} é😀")),
        ("numbers", .array([.int(-3), .double(0.5), .double(2), .double(.nan), .double(1e20)])),
        ("flags", .array([.bool(true), .bool(false), .null, .optional(nil), .optional("s")])),
        ("empty", .object([])), ("none", .array([])),
    ])

    @Test func compactText() {
        #expect(Self.document.serialized() == #"{"text":"q\" b\\ n\n r\r t\t ctl\u0001\u001f é😀","numbers":[-3,0.5,2,null,1e+20],"flags":[true,false,null,null,"s"],"empty":{},"none":[]}"#)
    }

    @Test func indentedText() {
        let nested = JSONValue.object([("a", .array([.int(1), .object([("b", .null)])])), ("c", .object([]))])
        #expect(nested.pretty() == "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ],\n  \"c\": {}\n}")
    }

    @Test func parsesBackToTheSameValue() throws {
        #expect(try JSONParser.parse(Array(Self.document.serialized().utf8)) == Self.document)
    }
}
