import Foundation
import Testing
@testable import Tokenizer

/// Folders as current transformers saves them (`save_pretrained`): `tokenizer.json` with the vocabulary, merges
/// as pairs and the added tokens with their flags, and a `tokenizer_config.json` naming tokens as plain strings.
struct TokenizerJSONTests {
    static func saveLikeTransformers(_ source: String, pad: String, eosNormalized: Bool, to folder: URL) throws {
        let vocab = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source + "/vocab.json")))
        let mergesText = try String(contentsOfFile: source + "/merges.txt", encoding: .utf8)
        let merges = mergesText.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
        func added(_ id: Int, _ content: String, _ normalized: Bool) -> [String: Any] {
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": normalized, "special": true]
        }
        var addedTokens = [added(49406, "<|startoftext|>", true), added(49407, "<|endoftext|>", eosNormalized)]
        if pad == "!" { addedTokens.insert(added(0, "!", false), at: 0) }
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": addedTokens,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
                      "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges] as [String: Any],
        ]
        try JSONSerialization.data(withJSONObject: tokenizer).write(to: folder.appendingPathComponent("tokenizer.json"))
        let config: [String: Any] = ["bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                                     "pad_token": pad, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"]
        try JSONSerialization.data(withJSONObject: config).write(to: folder.appendingPathComponent("tokenizer_config.json"))
    }

    @Test(arguments: [("tokenizer", CLIPVocabulary.endOfText, false), ("tokenizer_2", "!", true)])
    func tokenizerJSONFolderGivesTheReferenceIDs(_ name: String, _ pad: String, _ eosNormalized: Bool) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.saveLikeTransformers(FixturePaths.path("models/tiny-sdxl/\(name)"), pad: pad, eosNormalized: eosNormalized, to: folder)
        let tokenizer = try CLIPTokenizer(folder: folder.path)
        let fromFiles = try CLIPTokenizer(folder: FixturePaths.path("models/tiny-sdxl/\(name)"))
        #expect(tokenizer.vocabulary == fromFiles.vocabulary)
        #expect(tokenizer.padTokenID == fromFiles.padTokenID)
        let reference = try ReferenceIDsTests.reference()
        let expected = try #require(reference.ids[name])
        let matched = zip(reference.prompts, expected).filter { tokenizer.encode($0.0) == $0.1 }.count
        print("\(name) from tokenizer.json: \(matched) of \(expected.count) prompts give transformers' ids")
        #expect(matched == expected.count)
    }
}
