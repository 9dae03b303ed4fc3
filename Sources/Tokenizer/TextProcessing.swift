import Foundation

/// The text side of CLIP tokenisation, as transformers' `CLIPTokenizer` (tokenizers backend) does it:
/// normalisation (NFC, every whitespace run to one space, per-scalar lower-casing) and the CLIP
/// pre-tokenisation pattern
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
/// matched case-sensitively on the lower-cased text, implemented by hand over Unicode scalars.
enum TextProcessing {
    enum ScalarClass { case whitespace, letter, number, other }

    /// `\s`, `\p{L}` and `\p{N}` as the regular-expression engine of tokenizers sees them:
    /// White_Space, general categories L* and N*.
    static func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        if scalar.value >= 0x88F && unassignedInReference(scalar.value) { return .other }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// Letters and digits added in Unicode 17. The regular-expression tables of tokenizers 0.23 predate them, so
    /// `\p{L}` / `\p{N}` do not match them there; a Swift runtime with Unicode 17 data would. Checked against
    /// every scalar by the `tokenizer` fixture group (Fixtures/reference/tokenizer_unicode.json).
    private static let unicode17Additions: [ClosedRange<UInt32>] = [
        0x88F...0x88F, 0xC5C...0xC5C, 0xCDC...0xCDC, 0xA7CE...0xA7CF, 0xA7D2...0xA7D2, 0xA7D4...0xA7D4,
        0xA7F1...0xA7F1, 0x10940...0x10959, 0x10EC5...0x10EC7, 0x11DB0...0x11DDB, 0x11DE0...0x11DE9,
        0x16EA0...0x16EB8, 0x16EBB...0x16ED3, 0x16FF2...0x16FF6, 0x187F8...0x187FF, 0x18D09...0x18D1E,
        0x18D80...0x18DF2, 0x1E6C0...0x1E6DE, 0x1E6E0...0x1E6E2, 0x1E6E4...0x1E6E5, 0x1E6E7...0x1E6ED,
        0x1E6F0...0x1E6F4, 0x1E6FE...0x1E6FF, 0x2B73A...0x2B73F, 0x2CEA2...0x2CEAD, 0x323B0...0x33479,
    ]

    private static func unassignedInReference(_ value: UInt32) -> Bool {
        var low = 0, high = unicode17Additions.count
        while low < high {
            let mid = (low + high) / 2
            if unicode17Additions[mid].upperBound < value { low = mid + 1 } else { high = mid }
        }
        return low < unicode17Additions.count && unicode17Additions[low].contains(value)
    }

    /// NFC, then each maximal run of whitespace becomes one space, then each scalar is replaced by its full
    /// lower-case mapping (no context rules such as final sigma, and no renormalisation afterwards).
    static func normalize(_ text: String) -> [Unicode.Scalar] {
        let composed = text.precomposedStringWithCanonicalMapping
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(composed.unicodeScalars.count)
        var inWhitespace = false
        for scalar in composed.unicodeScalars {
            if scalar.properties.isWhitespace {
                if !inWhitespace { out.append(" ") }
                inWhitespace = true
                continue
            }
            inWhitespace = false
            if scalar.isASCII {
                out.append(scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(UInt8(scalar.value) | 0x20) : scalar)
            } else {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    private static let specialLiterals: [[Unicode.Scalar]] = ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) }
    private static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    static func hasPrefix(_ text: [Unicode.Scalar], at index: Int, _ literal: [Unicode.Scalar]) -> Bool {
        guard index + literal.count <= text.count else { return false }
        for k in 0..<literal.count where text[index + k] != literal[k] { return false }
        return true
    }

    /// The pieces of one normalised segment, as byte strings (UTF-8). Whitespace between matches is dropped.
    /// A `<|startoftext|>` / `<|endoftext|>` match is split again into `<|`, the word, `|>`, as the byte-level
    /// pre-tokenizer's own GPT-2 pattern does; on every other match that second split changes nothing.
    static func preTokenize(_ text: [Unicode.Scalar], into pieces: inout [ArraySlice<Unicode.Scalar>]) {
        var i = 0
        let n = text.count
        scan: while i < n {
            let cls = classify(text[i])
            if cls == .whitespace { i += 1; continue }
            if text[i] == "<" {
                for literal in specialLiterals where hasPrefix(text, at: i, literal) {
                    pieces.append(text[i..<(i + 2)])
                    pieces.append(text[(i + 2)..<(i + literal.count - 2)])
                    pieces.append(text[(i + literal.count - 2)..<(i + literal.count)])
                    i += literal.count
                    continue scan
                }
            }
            if text[i] == "'" {
                for literal in contractions where hasPrefix(text, at: i, literal) {
                    pieces.append(text[i..<(i + literal.count)])
                    i += literal.count
                    continue scan
                }
            }
            switch cls {
            case .letter:
                var j = i + 1
                while j < n, classify(text[j]) == .letter { j += 1 }
                pieces.append(text[i..<j])
                i = j
            case .number:
                pieces.append(text[i..<(i + 1)])
                i += 1
            default:
                var j = i + 1
                while j < n, classify(text[j]) == .other { j += 1 }
                pieces.append(text[i..<j])
                i = j
            }
        }
    }

    /// GPT-2's reversible map from bytes to printable characters: the printable Latin-1 bytes map to
    /// themselves, the other 68 bytes to U+0100 upwards in byte order.
    static let byteCharacters: [Character] = {
        var printable = Set<Int>()
        for range in [0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF] { printable.formUnion(range) }
        var next = 256
        return (0..<256).map { byte in
            if printable.contains(byte) { return Character(Unicode.Scalar(UInt32(byte))!) }
            defer { next += 1 }
            return Character(Unicode.Scalar(UInt32(next))!)
        }
    }()
}
