import CZlib
import Foundation

/// One BPE merge rule: the two symbols it joins, in rank order within `CLIPVocabulary.merges`.
public struct BPEMerge: Hashable, Sendable {
    public var first: String
    public var second: String
    public init(_ first: String, _ second: String) {
        self.first = first
        self.second = second
    }
}

/// A special token matched in the text before the BPE: `normalized` says whether it is looked for in the
/// normalised (lower-cased) text or in the raw text, as the `normalized` flag of a transformers `AddedToken`.
public struct SpecialToken: Hashable, Sendable {
    public var content: String
    public var normalized: Bool
    public init(_ content: String, normalized: Bool) {
        self.content = content
        self.normalized = normalized
    }
}

/// A CLIP BPE vocabulary: token → id and the ranked merges.
public struct CLIPVocabulary: Equatable, Sendable {
    public static let startOfText = "<|startoftext|>"
    public static let endOfText = "<|endoftext|>"
    /// CLIP's vocabulary uses the first 49152 − 256 − 2 merges of the BPE file.
    public static let clipMergeCount = 49152 - 256 - 2
    public static let clipVocabularySize = 49408

    public var tokens: [String: Int]
    public var merges: [BPEMerge]

    public init(tokens: [String: Int], merges: [BPEMerge]) {
        self.tokens = tokens
        self.merges = merges
    }

    /// CLIP's vocabulary built the standard way from BPE merges: the 256 byte symbols, the same with `</w>`,
    /// each merge's joined symbol, then `<|startoftext|>` and `<|endoftext|>`.
    public init(clipMerges merges: [BPEMerge]) {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        let printableSet = Set(printable)
        let byteOrder = printable + (0..<256).filter { !printableSet.contains($0) }
        let base = byteOrder.map { String(TextProcessing.byteCharacters[$0]) }
        var list = base + base.map { $0 + "</w>" } + merges.map { $0.first + $0.second }
        list += [Self.startOfText, Self.endOfText]
        var tokens: [String: Int] = [:]
        tokens.reserveCapacity(list.count)
        for (id, token) in list.enumerated() where tokens[token] == nil { tokens[token] = id }
        self.init(tokens: tokens, merges: merges)
    }

    // MARK: - Loading

    /// The default vocabulary from the CLIP BPE merges file (`bpe_simple_vocab_16e6.txt.gz`, as distributed
    /// by open_clip): line 1 is a header, the next 48,894 lines are the merges CLIP uses.
    public static func fromBPEMergesFile(_ path: String) throws -> CLIPVocabulary {
        let text = try readGzipText(path)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        guard lines.count >= clipMergeCount else {
            throw TokenizerError.badFile(path: path, reason: "has \(lines.count) merge lines, CLIP needs \(clipMergeCount)")
        }
        lines = lines.prefix(clipMergeCount)
        var merges: [BPEMerge] = []
        merges.reserveCapacity(clipMergeCount)
        for (index, line) in lines.enumerated() {
            merges.append(try parseMerge(line, path: path, line: index + 2))
        }
        return CLIPVocabulary(clipMerges: merges)
    }

    /// `vocab.json` (token → id) and `merges.txt` (an optional `#version` line, then one `a b` pair per line).
    public static func fromFiles(vocab vocabPath: String, merges mergesPath: String) throws -> CLIPVocabulary {
        let object = try readJSON(vocabPath)
        guard let dictionary = object as? [String: Any] else {
            throw TokenizerError.badFile(path: vocabPath, reason: "expected a JSON object of token → id")
        }
        let tokens = try tokenIDs(dictionary, path: vocabPath)
        let text = try readText(mergesPath)
        var merges: [BPEMerge] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if index == 0 && line.hasPrefix("#version") { continue }
            if line.isEmpty { continue }
            merges.append(try parseMerge(line, path: mergesPath, line: index + 1))
        }
        return CLIPVocabulary(tokens: tokens, merges: merges)
    }

    // MARK: - Helpers shared with the folder loader

    static func parseMerge(_ line: Substring, path: String, line number: Int) throws -> BPEMerge {
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw TokenizerError.badFile(path: path, reason: "line \(number) is not a merge \"a b\": \(line.prefix(60).debugDescription)")
        }
        return BPEMerge(String(parts[0]), String(parts[1]))
    }

    static func tokenIDs(_ dictionary: [String: Any], path: String) throws -> [String: Int] {
        guard !dictionary.isEmpty else { throw TokenizerError.badFile(path: path, reason: "the vocabulary is empty") }
        var tokens: [String: Int] = [:]
        tokens.reserveCapacity(dictionary.count)
        for (token, value) in dictionary {
            guard let number = value as? NSNumber, let id = Int(exactly: number.doubleValue), id >= 0 else {
                throw TokenizerError.badFile(path: path, reason: "the id of \(token.debugDescription) is not a non-negative integer")
            }
            tokens[token] = id
        }
        return tokens
    }

    static func readData(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw TokenizerError.missingFile(path: path)
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.badFile(path: path, reason: "cannot be read (\(error.localizedDescription))")
        }
    }

    static func readText(_ path: String) throws -> String {
        guard let text = String(data: try readData(path), encoding: .utf8) else {
            throw TokenizerError.badFile(path: path, reason: "is not UTF-8 text")
        }
        return text
    }

    static func readJSON(_ path: String) throws -> Any {
        let data = try readData(path)
        do {
            return try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.badFile(path: path, reason: "is not valid JSON")
        }
    }

    /// A whole gzip file, inflated with zlib.
    static func readGzipText(_ path: String) throws -> String {
        _ = try readData(path)  // existence and readability, with the same errors as other files
        guard let file = gzopen(path, "rb") else {
            throw TokenizerError.badFile(path: path, reason: "cannot be opened")
        }
        defer { gzclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if count < 0 {
                throw TokenizerError.badFile(path: path, reason: "is not a valid gzip file")
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<Int(count)])
        }
        // gzread ends quietly at a truncated stream; zlib keeps the reason (Z_BUF_ERROR) for gzerror.
        var status: Int32 = Z_OK
        _ = gzerror(file, &status)
        if status != Z_OK {
            throw TokenizerError.badFile(path: path, reason: status == Z_BUF_ERROR ? "is a truncated gzip file" : "is not a valid gzip file")
        }
        // zlib reads a file without a gzip header as plain bytes; the vocabulary must be compressed.
        if gzdirect(file) != 0 {
            throw TokenizerError.badFile(path: path, reason: "is not a gzip file")
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw TokenizerError.badFile(path: path, reason: "does not inflate to UTF-8 text")
        }
        return text
    }
}
