import Foundation
import Testing
@testable import Tokenizer

/// Every Unicode scalar against what transformers' tokenizer does with it alone
/// (Fixtures/reference/tokenizer_unicode.json): its class in the CLIP split pattern and its normalised form.
struct UnicodeTableTests {
    @Test func everyScalarClassifiesAndNormalizesAsTheReference() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: FixturePaths.path("reference/tokenizer_unicode.json")))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var expectedClass: [UInt32: TextProcessing.ScalarClass] = [:]
        for (key, cls) in [("letter", TextProcessing.ScalarClass.letter), ("number", .number), ("whitespace", .whitespace)] {
            for range in try #require(object[key] as? [[Int]]) {
                for value in range[0]...range[1] { expectedClass[UInt32(value)] = cls }
            }
        }
        var expectedNormal: [UInt32: [UInt32]] = [:]
        for entry in try #require(object["normalized"] as? [[Any]]) {
            expectedNormal[UInt32(entry[0] as! Int)] = (entry[1] as! [Int]).map(UInt32.init)
        }
        #expect(expectedClass.count > 140_000 && expectedNormal.count > 2_000)

        var scalars = 0, classMismatches: [String] = [], normalMismatches: [String] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            scalars += 1
            let want = expectedClass[value] ?? .other
            if TextProcessing.classify(scalar) != want {
                classMismatches.append(String(value, radix: 16, uppercase: true))
            }
            let normal = TextProcessing.normalize(String(scalar)).map(\.value)
            if normal != (expectedNormal[value] ?? [value]) {
                normalMismatches.append(String(value, radix: 16, uppercase: true))
            }
        }
        print("\(scalars) scalars: \(classMismatches.count) class and \(normalMismatches.count) normalisation differences")
        #expect(classMismatches.isEmpty, "classes differ at U+\(classMismatches.prefix(20))")
        #expect(normalMismatches.isEmpty, "normalisation differs at U+\(normalMismatches.prefix(20))")
    }
}
