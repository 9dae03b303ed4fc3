import Foundation

/// Why a vocabulary could not be loaded. Every case names the file (or folder) concerned.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A file the vocabulary needs does not exist.
    case missingFile(path: String)
    /// A folder holds neither `vocab.json` + `merges.txt` nor `tokenizer.json`.
    case noVocabulary(folder: String)
    /// A file exists but its content is not what a CLIP BPE vocabulary needs.
    case badFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "tokenizer file not found: \(path)"
        case .noVocabulary(let folder):
            return "no tokenizer vocabulary in \(folder): expected vocab.json and merges.txt, or tokenizer.json"
        case .badFile(let path, let reason):
            return "bad tokenizer file \(path): \(reason)"
        }
    }
}
