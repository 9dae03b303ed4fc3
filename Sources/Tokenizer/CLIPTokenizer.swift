import Foundation

/// CLIP's byte-level BPE tokenizer, giving the ids transformers' `CLIPTokenizer` gives with
/// `padding="max_length", max_length=77, truncation=True`.
///
/// Steps (each as the tokenizers backend of transformers 5 does it):
/// 1. special tokens whose `normalized` flag is false are split out of the raw text;
/// 2. each remaining segment is normalised (NFC, whitespace runs → one space, lower case), and special
///    tokens with `normalized` true are split out of it;
/// 3. the rest is cut into pieces by the CLIP pattern, each piece's UTF-8 bytes become byte symbols, the last
///    one carrying `</w>`, and merges are applied lowest rank first;
/// 4. `<|startoftext|>` + at most `maxLength − 2` tokens + `<|endoftext|>`, padded to `maxLength` with the pad token.
public final class CLIPTokenizer: @unchecked Sendable {
    public let vocabulary: CLIPVocabulary
    public let maxLength: Int
    public let padToken: String
    public let padTokenID: Int
    public let bosTokenID: Int
    public let eosTokenID: Int
    /// The special tokens split out of the text before the BPE (bos, eos, unk and pad, without repeats).
    public let specialTokens: [SpecialToken]

    private let specialIDs: [String: Int]
    private let rawSpecials: [[Unicode.Scalar]]
    private let normalizedSpecials: [[Unicode.Scalar]]
    private let byteIDs: [Int]
    private let byteEndIDs: [Int]
    private let unknownID: Int
    /// (left id << 32 | right id) → (rank, id of the joined symbol).
    private let ranks: [UInt64: (rank: Int32, id: Int32)]
    private var cache: [String: [Int]] = [:]
    private let cacheLock = NSLock()
    private static let cacheLimit = 100_000

    /// The special tokens of SDXL's published tokenizer configs: bos, eos and unk are `AddedToken`s with
    /// `normalized: true`, the pad token is a plain string (so `normalized: false`); where two share their
    /// text, the later one's flag holds (bos, eos, unk, pad order), as transformers registers them.
    public static func publishedSpecialTokens(padToken: String) -> [SpecialToken] {
        [SpecialToken(CLIPVocabulary.startOfText, normalized: true), SpecialToken(CLIPVocabulary.endOfText, normalized: true),
         SpecialToken(CLIPVocabulary.endOfText, normalized: true), SpecialToken(padToken, normalized: false)]
    }

    /// - Parameters:
    ///   - padToken: `<|endoftext|>` for SDXL's first tokenizer, `!` for the second.
    ///   - specialTokens: in registration order (later entries with the same text override earlier ones);
    ///     by default `publishedSpecialTokens(padToken:)`.
    public convenience init(vocabulary: CLIPVocabulary, padToken: String = CLIPVocabulary.endOfText, maxLength: Int = 77,
                            specialTokens: [SpecialToken]? = nil) throws {
        try self.init(vocabulary: vocabulary, padToken: padToken, maxLength: maxLength, specialTokens: specialTokens,
                      files: (vocabulary: "<vocabulary>", merges: "<merges>", config: "<configuration>"))
    }

    /// `files` name the sources of the vocabulary, the merges and the configuration in error messages.
    init(vocabulary: CLIPVocabulary, padToken: String, maxLength: Int, specialTokens: [SpecialToken]?,
         files: (vocabulary: String, merges: String, config: String)) throws {
        guard maxLength >= 2 else {
            throw TokenizerError.badFile(path: files.config, reason: "max length \(maxLength) leaves no room for the start and end tokens")
        }
        var tokens = vocabulary.tokens
        func id(_ token: String, required: Bool) throws -> Int {
            if let id = tokens[token] { return id }
            if required { throw TokenizerError.badFile(path: files.vocabulary, reason: "has no \(token.debugDescription) token") }
            // transformers adds a special token missing from the vocabulary after the last id.
            let id = (tokens.values.max() ?? -1) + 1
            tokens[token] = id
            return id
        }
        bosTokenID = try id(CLIPVocabulary.startOfText, required: true)
        eosTokenID = try id(CLIPVocabulary.endOfText, required: true)
        unknownID = eosTokenID

        var ordered: [SpecialToken] = []
        for token in specialTokens ?? Self.publishedSpecialTokens(padToken: padToken) where !token.content.isEmpty {
            if let index = ordered.firstIndex(where: { $0.content == token.content }) {
                ordered[index] = token
            } else {
                ordered.append(token)
            }
        }
        var specialIDs: [String: Int] = [:]
        for token in ordered { specialIDs[token.content] = try id(token.content, required: false) }
        padTokenID = try id(padToken, required: false)
        specialIDs[padToken] = padTokenID
        self.specialTokens = ordered
        self.specialIDs = specialIDs
        rawSpecials = ordered.filter { !$0.normalized }.map { Array($0.content.unicodeScalars) }
        normalizedSpecials = ordered.filter { $0.normalized }.map { Array($0.content.unicodeScalars) }

        var byteIDs: [Int] = []
        var byteEndIDs: [Int] = []
        for character in TextProcessing.byteCharacters {
            byteIDs.append(tokens[String(character)] ?? unknownID)
            byteEndIDs.append(tokens[String(character) + "</w>"] ?? unknownID)
        }
        self.byteIDs = byteIDs
        self.byteEndIDs = byteEndIDs

        var ranks: [UInt64: (rank: Int32, id: Int32)] = [:]
        ranks.reserveCapacity(vocabulary.merges.count)
        for (rank, merge) in vocabulary.merges.enumerated() {
            guard let left = tokens[merge.first], let right = tokens[merge.second],
                  let joined = tokens[merge.first + merge.second] else {
                throw TokenizerError.badFile(path: files.merges, reason: "merge \(rank + 1) \"\(merge.first) \(merge.second)\" uses a token missing from the vocabulary")
            }
            let key = UInt64(left) << 32 | UInt64(right)
            if ranks[key] == nil { ranks[key] = (Int32(rank), Int32(joined)) }
        }
        self.ranks = ranks
        self.vocabulary = CLIPVocabulary(tokens: tokens, merges: vocabulary.merges)
        self.maxLength = maxLength
        self.padToken = padToken
    }

    // MARK: - Encoding

    /// `maxLength` ids: start token, the text's tokens (truncated), end token, then pad tokens.
    public func encode(_ text: String) -> [Int] {
        var ids = [bosTokenID]
        ids.append(contentsOf: tokenize(text).prefix(maxLength - 2))
        ids.append(eosTokenID)
        ids.append(contentsOf: repeatElement(padTokenID, count: maxLength - ids.count))
        return ids
    }

    /// The text's token ids, without start/end tokens, truncation or padding.
    public func tokenize(_ text: String) -> [Int] {
        var ids: [Int] = []
        for rawSegment in split(Array(text.unicodeScalars)[...], on: rawSpecials) {
            guard case .text(let raw) = rawSegment else {
                if case .special(let id) = rawSegment { ids.append(id) }
                continue
            }
            let normalized = TextProcessing.normalize(String(String.UnicodeScalarView(raw)))
            for segment in split(normalized[...], on: normalizedSpecials) {
                switch segment {
                case .special(let id):
                    ids.append(id)
                case .text(let part):
                    var pieces: [ArraySlice<Unicode.Scalar>] = []
                    TextProcessing.preTokenize(Array(part), into: &pieces)
                    for piece in pieces { ids.append(contentsOf: bpe(piece)) }
                }
            }
        }
        return ids
    }

    private enum Segment { case text(ArraySlice<Unicode.Scalar>), special(Int) }

    /// Splits `text` at the special tokens: scanning left to right, the first place where one starts wins,
    /// the longest where several start there.
    private func split(_ text: ArraySlice<Unicode.Scalar>, on specials: [[Unicode.Scalar]]) -> [Segment] {
        guard !specials.isEmpty else { return [.text(text)] }
        let scalars = Array(text)
        var segments: [Segment] = []
        var position = 0
        var start = 0
        while start < scalars.count {
            var best: [Unicode.Scalar]?
            for special in specials where TextProcessing.hasPrefix(scalars, at: start, special) {
                if best == nil || special.count > best!.count { best = special }
            }
            guard let best else {
                start += 1
                continue
            }
            if start > position { segments.append(.text(scalars[position..<start])) }
            segments.append(.special(specialIDs[String(String.UnicodeScalarView(best))]!))
            start += best.count
            position = start
        }
        if position < scalars.count { segments.append(.text(scalars[position...])) }
        return segments
    }

    /// BPE of one piece: byte symbols (the last with `</w>`), then the lowest-ranked adjacent pair is joined
    /// everywhere it occurs, left to right, until no pair has a merge.
    private func bpe(_ piece: ArraySlice<Unicode.Scalar>) -> [Int] {
        let word = String(String.UnicodeScalarView(piece))
        cacheLock.lock()
        if let hit = cache[word] {
            cacheLock.unlock()
            return hit
        }
        cacheLock.unlock()

        let bytes = Array(word.utf8)
        var symbols: [Int32] = bytes.enumerated().map { index, byte in
            Int32(index == bytes.count - 1 ? byteEndIDs[Int(byte)] : byteIDs[Int(byte)])
        }
        while symbols.count > 1 {
            var bestRank = Int32.max
            var bestPair: UInt64 = 0
            var bestID: Int32 = 0
            for k in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(symbols[k])) << 32 | UInt64(UInt32(symbols[k + 1]))
                if let merge = ranks[key], merge.rank < bestRank {
                    bestRank = merge.rank
                    bestPair = key
                    bestID = merge.id
                }
            }
            if bestRank == Int32.max { break }
            let left = Int32(truncatingIfNeeded: bestPair >> 32), right = Int32(truncatingIfNeeded: bestPair & 0xFFFF_FFFF)
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count)
            var k = 0
            while k < symbols.count {
                if k + 1 < symbols.count, symbols[k] == left, symbols[k + 1] == right {
                    merged.append(bestID)
                    k += 2
                } else {
                    merged.append(symbols[k])
                    k += 1
                }
            }
            symbols = merged
        }
        let ids = symbols.map { Int($0) }

        cacheLock.lock()
        if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[word] = ids
        cacheLock.unlock()
        return ids
    }
}
