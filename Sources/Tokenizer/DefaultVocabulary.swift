import Foundation

/// tlkit's own CLIP vocabulary (Resources/bpe_simple_vocab_16e6.txt.gz, MIT, see Resources/ORIGIN.md), for
/// single-file checkpoints, which carry no tokenizer. Found without `Bundle.module` (which aborts when the
/// bundle is missing) in this order: `$TLKIT_VOCAB`; the resource bundle next to the executable; an
/// installed `../share/tlkit/` copy; the source tree this binary was built from.
public enum DefaultVocabulary {
    public static let fileName = "bpe_simple_vocab_16e6.txt.gz"

    /// The file in the source tree (development builds and tests).
    public static var sourcePath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/\(fileName)").path
    }

    static var candidates: [String] {
        var out: [String] = []
        if let env = ProcessInfo.processInfo.environment["TLKIT_VOCAB"], !env.isEmpty { out.append(env) }
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]).deletingLastPathComponent()
        out.append(exe.appendingPathComponent("tlkit_Tokenizer.resources/Resources/\(fileName)").path)
        out.append(exe.appendingPathComponent("../share/tlkit/\(fileName)").standardized.path)
        out.append(sourcePath)
        return out
    }

    /// The first candidate that exists, or an error listing where it looked.
    public static func path() throws -> String {
        let all = candidates
        if let found = all.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw TokenizerError.missingFile(path: "the default CLIP vocabulary (looked in \(all.joined(separator: ", ")); set TLKIT_VOCAB")
    }

    /// SDXL's two tokenizers over the default vocabulary: `<|endoftext|>` padding for the first, `!` for the second.
    public static func sdxlTokenizers() throws -> (CLIPTokenizer, CLIPTokenizer) {
        let vocabulary = try CLIPVocabulary.fromBPEMergesFile(try path())
        return (try CLIPTokenizer(vocabulary: vocabulary), try CLIPTokenizer(vocabulary: vocabulary, padToken: "!"))
    }
}
