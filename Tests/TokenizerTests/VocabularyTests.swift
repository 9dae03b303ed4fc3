import Foundation
import Testing
@testable import Tokenizer

struct VocabularyTests {
    @Test func defaultVocabularyEqualsTheFixtureFolders() throws {
        let fromGzip = try CLIPVocabulary.fromBPEMergesFile(FixturePaths.defaultVocabulary)
        #expect(fromGzip.tokens.count == CLIPVocabulary.clipVocabularySize)
        #expect(fromGzip.merges.count == CLIPVocabulary.clipMergeCount)
        #expect(fromGzip.tokens[CLIPVocabulary.startOfText] == 49406)
        #expect(fromGzip.tokens[CLIPVocabulary.endOfText] == 49407)
        #expect(fromGzip.tokens["!"] == 0)
        #expect(fromGzip.tokens["!</w>"] == 256)
        #expect(fromGzip.merges.first == BPEMerge("i", "n"))
        for folder in [FixturePaths.tokenizer, FixturePaths.tokenizer2] {
            let fromFiles = try CLIPVocabulary.fromFiles(vocab: folder + "/vocab.json", merges: folder + "/merges.txt")
            #expect(fromFiles.tokens == fromGzip.tokens, "\(folder)/vocab.json")
            #expect(fromFiles.merges == fromGzip.merges, "\(folder)/merges.txt")
            #expect(fromFiles == fromGzip)
        }
    }

    @Test func byteSymbolsAreGPT2s() {
        let characters = TextProcessing.byteCharacters
        #expect(Set(characters).count == 256)
        #expect(characters[Int(UInt8(ascii: "a"))] == "a")
        #expect(characters[0x20] == "\u{0120}")  // space → Ġ
        #expect(characters[0x00] == "\u{0100}")
        #expect(characters[0xAD] == "\u{0143}")  // soft hyphen byte, the last unprintable one
    }

    @Test func folderWithoutConfigurationUsesTransformersDefaults() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: FixturePaths.tokenizer + "/" + name, toPath: folder.appendingPathComponent(name).path)
        }
        let tokenizer = try CLIPTokenizer(folder: folder.path)
        #expect(tokenizer.padTokenID == 49407 && tokenizer.maxLength == 77)
        #expect(tokenizer.specialTokens.allSatisfy { !$0.normalized })
        // transformers 5.23 on the same folder: the start token is only matched in its exact spelling.
        #expect(tokenizer.tokenize("A <|STARTOFTEXT|> b") == [320, 27, 347, 993, 6659, 4160, 91, 285, 321])
        #expect(tokenizer.tokenize("a <|startoftext|> b") == [320, 49406, 321])
    }

    @Test func folderConfigurationIsRead() throws {
        let first = try CLIPTokenizer(folder: FixturePaths.tokenizer)
        let second = try CLIPTokenizer(folder: FixturePaths.tokenizer2)
        #expect(first.padTokenID == 49407 && first.padToken == CLIPVocabulary.endOfText)
        #expect(second.padTokenID == 0 && second.padToken == "!")
        #expect(first.bosTokenID == 49406 && first.eosTokenID == 49407 && first.maxLength == 77)
        #expect(first.specialTokens == [SpecialToken("<|startoftext|>", normalized: true), SpecialToken("<|endoftext|>", normalized: false)])
        #expect(second.specialTokens == [SpecialToken("<|startoftext|>", normalized: true), SpecialToken("<|endoftext|>", normalized: true),
                                         SpecialToken("!", normalized: false)])
    }
}
