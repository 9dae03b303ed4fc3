import Foundation
import Testing
@testable import Tokenizer

/// Token ids against transformers' CLIPTokenizer (Fixtures/reference/tokenizer_ids.json, group `tokenizer`).
struct ReferenceIDsTests {
    struct Reference {
        var prompts: [String]
        var ids: [String: [[Int]]]
    }

    static func reference() throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: FixturePaths.reference))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let prompts = try #require(object["prompts"] as? [String])
        var ids: [String: [[Int]]] = [:]
        for key in ["tokenizer", "tokenizer_2"] {
            ids[key] = try #require(object[key] as? [[Int]])
        }
        return Reference(prompts: prompts, ids: ids)
    }

    @Test(arguments: [("tokenizer", FixturePaths.tokenizer), ("tokenizer_2", FixturePaths.tokenizer2)])
    func everyPromptMatchesTransformers(_ name: String, _ folder: String) throws {
        let reference = try Self.reference()
        let expected = try #require(reference.ids[name])
        #expect(reference.prompts.count >= 200)
        #expect(expected.count == reference.prompts.count)
        let tokenizer = try CLIPTokenizer(folder: folder)
        var matched = 0
        for (prompt, ids) in zip(reference.prompts, expected) {
            let got = tokenizer.encode(prompt)
            #expect(got == ids, "\(name): \(prompt.debugDescription)")
            if got == ids { matched += 1 }
        }
        print("\(name): \(matched) of \(reference.prompts.count) prompts give transformers' ids")
        #expect(matched == reference.prompts.count)
    }

    @Test func fixtureCoversWhatItShould() throws {
        let reference = try Self.reference()
        let first = try CLIPTokenizer(folder: FixturePaths.tokenizer)
        let truncated = reference.prompts.filter { first.tokenize($0).count > 75 }
        #expect(truncated.count >= 10, "prompts over 77 tokens")
        #expect(reference.prompts.contains(""))
        #expect(reference.prompts.contains { $0.contains("sks dog") })
        #expect(reference.prompts.contains { $0.unicodeScalars.contains { $0.properties.isEmojiPresentation } })
        #expect(reference.prompts.contains { $0.contains("\t") && $0.contains("\n") })
    }

    @Test func defaultVocabularyTokenizersMatchFolderOnes() throws {
        let vocabulary = try CLIPVocabulary.fromBPEMergesFile(FixturePaths.defaultVocabulary)
        let reference = try Self.reference()
        for (name, pad) in [("tokenizer", CLIPVocabulary.endOfText), ("tokenizer_2", "!")] {
            let tokenizer = try CLIPTokenizer(vocabulary: vocabulary, padToken: pad)
            let expected = try #require(reference.ids[name])
            let mismatches = zip(reference.prompts, expected).filter { tokenizer.encode($0.0) != $0.1 }.map(\.0)
            #expect(mismatches.isEmpty, "\(name) from the default vocabulary: \(mismatches)")
        }
    }
}
