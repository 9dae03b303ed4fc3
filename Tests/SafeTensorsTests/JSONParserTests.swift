import JSONOutput
import Testing
@testable import SafeTensors

struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test func escapesAndUnicode() throws {
        #expect(try parse(#""a\"b\\c\n\u00e9\ud83d\ude00""#) == .string("a\"b\\c\né😀"))
        #expect(try parse(#""héllo""#) == .string("héllo"))
    }

    @Test func rejectsMalformed() {
        for text in ["{", "{\"a\"}", "[1,]", "01", "1.", "\"\\x\"", "\"\\ud800\"", "tru", "{\"a\":1}x", "\"a\u{01}\""] {
            #expect(throws: JSONParseError.self, "\(text)") { try parse(text) }
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try parse(deep) }
    }

    @Test func quoteRoundTrips() throws {
        let original = "tab\t quote\" slash\\ ctl\u{01} é"
        #expect(try parse(JSONText.quote(original)) == .string(original))
    }
}
