import Foundation
import JSONOutput
import Testing
@testable import TLKitCommands

/// The catalog commands' own formatting, against Foundation's.
struct CatalogOutputTests {
    @Test func sizesRoundAsPrintfDoes() {
        var r = SystemRandomNumberGenerator()
        // Exact ties in binary (x.x5 with a short binary expansion), near-ties, unit boundaries, random sizes.
        var sizes = [999, 1000, 1049, 1050, 1051, 1250, 1350, 2250, 999_949, 999_950, 999_999, 1_000_000, 10_037_596, 80_237_596]
        sizes += (0..<20_000).map { _ in Int.random(in: 1000..<(1 << 44), using: &r) }
        for n in sizes {
            var value = Double(n)
            var unit = 0
            while value >= 1000 && unit < 4 { value /= 1000; unit += 1 }
            #expect(CatalogCLI.oneDecimal(value) == String(format: "%.1f", value), "\(n)")
        }
        #expect(CatalogCLI.bytes(512) == "512 B")
        #expect(CatalogCLI.bytes(10_037_596) == "10.0 MB")
    }

    @Test func jsonEscapesAndIntegers() {
        var o = JSONWriter()
        o.beginObject()
        o.add("s", "a\"b\\c\nd\u{1}é")
        o.add("n", Int.min)
        o.add("z", 0)
        o.add("none", nil as String?)
        o.add("tags", ["x", "y\"z"])
        o.endObject()
        #expect(o.text == #"{"s":"a\"b\\c\nd\u0001é","n":-9223372036854775808,"z":0,"none":null,"tags":["x","y\"z"]}"#)
        let decoded = try? JSONSerialization.jsonObject(with: Data(o.text.utf8)) as? [String: Any]
        #expect(decoded?["s"] as? String == "a\"b\\c\nd\u{1}é")
    }
}
