import Foundation
import Testing
@testable import Tokenizer

struct LoadingErrorTests {
    func write(_ text: String, _ url: URL) throws { try Data(text.utf8).write(to: url) }

    @Test func missingFolderAndFiles() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = folder.appendingPathComponent("nope").path
        #expect(throws: TokenizerError.missingFile(path: missing)) { try CLIPTokenizer(folder: missing) }
        #expect(throws: TokenizerError.noVocabulary(folder: folder.path)) { try CLIPTokenizer(folder: folder.path) }
        try FileManager.default.copyItem(atPath: FixturePaths.tokenizer + "/vocab.json", toPath: folder.appendingPathComponent("vocab.json").path)
        #expect(throws: TokenizerError.missingFile(path: folder.appendingPathComponent("merges.txt").path)) {
            try CLIPTokenizer(folder: folder.path)
        }
        #expect(throws: TokenizerError.missingFile(path: missing + ".gz")) { try CLIPVocabulary.fromBPEMergesFile(missing + ".gz") }
        let error = TokenizerError.noVocabulary(folder: "/m/tokenizer")
        #expect(error.description == "no tokenizer vocabulary in /m/tokenizer: expected vocab.json and merges.txt, or tokenizer.json")
    }

    @Test func badFiles() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let vocab = folder.appendingPathComponent("vocab.json"), merges = folder.appendingPathComponent("merges.txt")
        try write("#version: 0.2\ni n\n", merges)

        func badFile(_ path: URL, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("expected an error about \(path.lastPathComponent)")
            } catch let TokenizerError.badFile(reported, reason) {
                #expect(reported == path.path)
                print("\(path.lastPathComponent): \(reason)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        try write("{not json", vocab)
        badFile(vocab) { _ = try CLIPTokenizer(folder: folder.path) }
        try write("[1, 2]", vocab)
        badFile(vocab) { _ = try CLIPTokenizer(folder: folder.path) }
        try write("{\"a\": \"x\"}", vocab)
        badFile(vocab) { _ = try CLIPTokenizer(folder: folder.path) }
        try write("{\"i\": 0, \"n\": 1, \"in\": 2, \"<|startoftext|>\": 3, \"<|endoftext|>\": 4}", vocab)
        try write("#version: 0.2\ni n\nthis line has three\n", merges)
        badFile(merges) { _ = try CLIPTokenizer(folder: folder.path) }
        try Data([0x69, 0x20, 0xFF, 0x0A]).write(to: merges)
        badFile(merges) { _ = try CLIPTokenizer(folder: folder.path) }

        // A merge whose parts are not in the vocabulary, and a vocabulary without CLIP's start token.
        try write("i n\nx y\n", merges)
        badFile(merges) { _ = try CLIPTokenizer(folder: folder.path) }
        try write("{\"i\": 0}", vocab)
        try write("", merges)
        badFile(vocab) { _ = try CLIPTokenizer(folder: folder.path) }

        let config = folder.appendingPathComponent("tokenizer_config.json")
        try write("{\"pad_token\": 5}", config)
        badFile(config) { _ = try CLIPTokenizer(folder: folder.path) }
    }

    @Test func badGzipFiles() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plain = folder.appendingPathComponent("plain.txt.gz")
        try write("\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\n", plain)
        #expect(throws: TokenizerError.badFile(path: plain.path, reason: "is not a gzip file")) {
            try CLIPVocabulary.fromBPEMergesFile(plain.path)
        }
        let original = try Data(contentsOf: URL(fileURLWithPath: FixturePaths.defaultVocabulary))
        let truncated = folder.appendingPathComponent("truncated.txt.gz")
        try original.prefix(original.count / 2).write(to: truncated)
        #expect(throws: TokenizerError.badFile(path: truncated.path, reason: "is a truncated gzip file")) {
            try CLIPVocabulary.fromBPEMergesFile(truncated.path)
        }
        var corrupt = original
        for index in stride(from: 1000, to: 2000, by: 7) { corrupt[index] ^= 0x5A }
        let corruptURL = folder.appendingPathComponent("corrupt.txt.gz")
        try corrupt.write(to: corruptURL)
        #expect(throws: TokenizerError.badFile(path: corruptURL.path, reason: "is not a valid gzip file")) {
            try CLIPVocabulary.fromBPEMergesFile(corruptURL.path)
        }
    }

    @Test func tokenizerJSONErrors() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("tokenizer.json")
        try write("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", json)
        #expect(throws: TokenizerError.badFile(path: json.path, reason: "model type WordPiece is not BPE")) {
            try CLIPTokenizer(folder: folder.path)
        }
        try write("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}", json)
        #expect(throws: TokenizerError.badFile(path: json.path, reason: "merge 1 is neither \"a b\" nor [\"a\", \"b\"]")) {
            try CLIPTokenizer(folder: folder.path)
        }
        try write("{\"model\": {\"type\": \"BPE\", \"end_of_word_suffix\": \"\", \"vocab\": {\"a\": 0}, \"merges\": []}}", json)
        #expect(throws: TokenizerError.self) { try CLIPTokenizer(folder: folder.path) }
    }
}
