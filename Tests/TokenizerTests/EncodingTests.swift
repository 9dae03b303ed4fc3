import Foundation
import Testing
@testable import Tokenizer

struct EncodingTests {
    let first: CLIPTokenizer
    let second: CLIPTokenizer

    init() throws {
        first = try CLIPTokenizer(folder: FixturePaths.tokenizer)
        second = try CLIPTokenizer(folder: FixturePaths.tokenizer2)
    }

    @Test func startEndAndPadding() {
        let ids = first.encode("a photo of sks dog")
        #expect(ids.count == 77)
        #expect(ids.prefix(7) == [49406, 320, 1125, 539, 48136, 1929, 49407])
        #expect(ids.dropFirst(7).allSatisfy { $0 == 49407 })
        let padded = second.encode("a photo of sks dog")
        #expect(padded.prefix(7) == ids.prefix(7))
        #expect(padded.dropFirst(7).allSatisfy { $0 == 0 })
        #expect(first.encode("") == [49406] + Array(repeating: 49407, count: 76))
        #expect(second.encode("  \n\t ") == [49406, 49407] + Array(repeating: 0, count: 75))
    }

    @Test func truncationKeepsSeventyFiveTokens() throws {
        let text = String(repeating: "dog ", count: 100)
        #expect(first.tokenize(text).count == 100)
        let ids = first.encode(text)
        #expect(ids.count == 77)
        #expect(ids.first == 49406 && ids.last == 49407)
        #expect(ids[1...75].allSatisfy { $0 == first.vocabulary.tokens["dog</w>"] })
        let short = try CLIPTokenizer(vocabulary: first.vocabulary, maxLength: 5)
        #expect(short.encode(text) == [49406, 1929, 1929, 1929, 49407])
    }

    @Test func specialTokensFollowTheirFlags() {
        // The second tokenizer's pad "!" is a special token matched in the raw text: "!!" is two pads there.
        #expect(first.tokenize("hello!!") == [3306, 748])
        #expect(second.tokenize("hello!!") == [3306, 0, 0])
        // "<|endoftext|>" is matched raw (exact case) by the first tokenizer, after lower-casing by the second.
        #expect(first.tokenize("a <|endoftext|> b") == [320, 49407, 321])
        #expect(second.tokenize("A <|ENDOFTEXT|> b") == [320, 49407, 321])
        #expect(first.tokenize("A <|ENDOFTEXT|> b") == [320, 27, 347, 40786, 4160, 91, 285, 321])
    }

    @Test func preTokenizerPieces() {
        func pieces(_ text: String) -> [String] {
            var out: [ArraySlice<Unicode.Scalar>] = []
            TextProcessing.preTokenize(TextProcessing.normalize(text), into: &out)
            return out.map { String(String.UnicodeScalarView($0)) }
        }
        #expect(pieces("Don't STOP!!  it's 42") == ["don", "'t", "stop", "!!", "it", "'s", "4", "2"])
        #expect(pieces("!'s x<|endoftext|>") == ["!'", "s", "x", "<|", "endoftext", "|>"])
        #expect(pieces("'ſ") == ["'", "ſ"], "the pattern is case-sensitive on the lower-cased text")
        #expect(pieces("İ") == ["i", "\u{0307}"], "full lower-case mapping, combining dot on its own")
        #expect(pieces("cafe\u{301}") == ["café"], "NFC")
    }

    @Test func concurrentUseGivesTheSameIDs() async {
        let prompts = (0..<64).map { "prompt \($0): a photo of sks dog wearing hat number \($0 * 7)" }
        let serial = prompts.map { first.encode($0) }
        let parallel = await withTaskGroup(of: (Int, [Int]).self) { group in
            for (index, prompt) in prompts.enumerated() { group.addTask { [first] in (index, first.encode(prompt)) } }
            var out = [[Int]](repeating: [], count: prompts.count)
            for await (index, ids) in group { out[index] = ids }
            return out
        }
        #expect(parallel == serial)
    }
}
