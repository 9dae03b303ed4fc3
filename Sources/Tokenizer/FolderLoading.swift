import Foundation

extension CLIPTokenizer {
    /// A tokenizer from a diffusers `tokenizer/` or `tokenizer_2/` folder: `vocab.json` + `merges.txt` (the
    /// published SDXL layout) or `tokenizer.json` (what current transformers saves), with the pad token,
    /// special-token flags and `model_max_length` from `tokenizer_config.json` / `special_tokens_map.json`
    /// when present.
    public convenience init(folder: String) throws {
        let url = URL(fileURLWithPath: folder)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw TokenizerError.missingFile(path: folder)
        }
        guard isDirectory.boolValue else {
            throw TokenizerError.badFile(path: folder, reason: "is not a folder (expected a tokenizer folder with vocab.json and merges.txt, or tokenizer.json)")
        }
        func file(_ name: String) -> String? {
            let path = url.appendingPathComponent(name).path
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        let config = try Self.specialTokenConfig(config: file("tokenizer_config.json"), map: file("special_tokens_map.json"))

        let vocabulary: CLIPVocabulary
        let sources: (vocabulary: String, merges: String, config: String)
        var specials = config.specials
        var padToken = config.padToken
        let vocabPath = file("vocab.json"), mergesPath = file("merges.txt")
        let configPath = file("tokenizer_config.json") ?? file("special_tokens_map.json") ?? folder
        if let vocabPath, let mergesPath {
            vocabulary = try CLIPVocabulary.fromFiles(vocab: vocabPath, merges: mergesPath)
            sources = (vocabPath, mergesPath, configPath)
        } else if let jsonPath = file("tokenizer.json") {
            sources = (jsonPath, jsonPath, configPath)
            let loaded = try Self.fromTokenizerJSON(jsonPath)
            vocabulary = loaded.vocabulary
            // The backend's own added tokens carry the flags it matches with (transformers keeps them even where
            // the config names the same token as a plain string); a pad token it lacks is added unnormalised.
            specials = loaded.specials
            padToken = padToken ?? loaded.padToken
            if let padToken, !specials.contains(where: { $0.content == padToken }) {
                specials.append(SpecialToken(padToken, normalized: false))
            }
        } else if vocabPath != nil || mergesPath != nil {
            throw TokenizerError.missingFile(path: url.appendingPathComponent(vocabPath == nil ? "vocab.json" : "merges.txt").path)
        } else {
            throw TokenizerError.noVocabulary(folder: folder)
        }
        let pad = padToken ?? CLIPVocabulary.endOfText
        if specials.isEmpty {
            // No configuration at all: transformers' defaults are plain strings, matched in the raw text.
            specials = [CLIPVocabulary.startOfText, CLIPVocabulary.endOfText, pad].map { SpecialToken($0, normalized: false) }
        }
        try self.init(vocabulary: vocabulary, padToken: pad, maxLength: config.maxLength,
                      specialTokens: specials, files: sources)
    }

    struct FolderConfig {
        var specials: [SpecialToken] = []
        var padToken: String?
        var maxLength = 77
    }

    /// bos, eos, unk and pad from `tokenizer_config.json`, falling back to `special_tokens_map.json` per key.
    /// A token written as an object keeps its `normalized` flag; one written as a plain string is not normalised.
    static func specialTokenConfig(config: String?, map: String?) throws -> FolderConfig {
        var result = FolderConfig()
        var sources: [[String: Any]] = []
        for path in [config, map].compactMap({ $0 }) {
            guard let object = try CLIPVocabulary.readJSON(path) as? [String: Any] else {
                throw TokenizerError.badFile(path: path, reason: "expected a JSON object")
            }
            sources.append(object)
        }
        guard !sources.isEmpty else { return result }
        for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            guard let value = sources.lazy.compactMap({ $0[key] }).first, !(value is NSNull) else { continue }
            let token: SpecialToken
            if let text = value as? String {
                token = SpecialToken(text, normalized: false)
            } else if let object = value as? [String: Any], let content = object["content"] as? String {
                token = SpecialToken(content, normalized: (object["normalized"] as? Bool) ?? false)
            } else {
                throw TokenizerError.badFile(path: config ?? map!, reason: "\(key) is neither a string nor an object with \"content\"")
            }
            result.specials.append(token)
            if key == "pad_token" { result.padToken = token.content }
        }
        if let number = sources[0]["model_max_length"] as? NSNumber {
            let value = number.doubleValue
            // transformers writes a huge sentinel when no length is set; CLIP's text encoders have 77 positions.
            if value >= 2 && value <= 4096 { result.maxLength = Int(value) }
        }
        return result
    }

    /// The BPE model and special added tokens of a tokenizers `tokenizer.json`.
    static func fromTokenizerJSON(_ path: String) throws -> (vocabulary: CLIPVocabulary, specials: [SpecialToken], padToken: String?) {
        guard let root = try CLIPVocabulary.readJSON(path) as? [String: Any] else {
            throw TokenizerError.badFile(path: path, reason: "expected a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else {
            throw TokenizerError.badFile(path: path, reason: "has no \"model\"")
        }
        guard (model["type"] as? String) == "BPE" else {
            throw TokenizerError.badFile(path: path, reason: "model type \((model["type"] as? String) ?? "missing") is not BPE")
        }
        if let suffix = model["end_of_word_suffix"] as? String, suffix != "</w>" {
            throw TokenizerError.badFile(path: path, reason: "end_of_word_suffix \(suffix.debugDescription) is not CLIP's \"</w>\"")
        }
        guard let vocab = model["vocab"] as? [String: Any] else {
            throw TokenizerError.badFile(path: path, reason: "model has no \"vocab\" object")
        }
        let tokens = try CLIPVocabulary.tokenIDs(vocab, path: path)
        guard let mergeList = model["merges"] as? [Any] else {
            throw TokenizerError.badFile(path: path, reason: "model has no \"merges\" list")
        }
        var merges: [BPEMerge] = []
        merges.reserveCapacity(mergeList.count)
        for (index, entry) in mergeList.enumerated() {
            if let line = entry as? String {
                merges.append(try CLIPVocabulary.parseMerge(Substring(line), path: path, line: index + 1))
            } else if let pair = entry as? [String], pair.count == 2 {
                merges.append(BPEMerge(pair[0], pair[1]))
            } else {
                throw TokenizerError.badFile(path: path, reason: "merge \(index + 1) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var specials: [SpecialToken] = []
        for case let added as [String: Any] in (root["added_tokens"] as? [Any]) ?? [] {
            guard (added["special"] as? Bool) == true, let content = added["content"] as? String else { continue }
            specials.append(SpecialToken(content, normalized: (added["normalized"] as? Bool) ?? false))
        }
        let pad = (root["padding"] as? [String: Any])?["pad_token"] as? String
        return (CLIPVocabulary(tokens: tokens, merges: merges), specials, pad)
    }
}
