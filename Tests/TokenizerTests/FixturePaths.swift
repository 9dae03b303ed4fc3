import Foundation
import TestSupport
import Tokenizer

/// Paths of the committed fixtures, found from this source file so tests run from any folder.
enum FixturePaths {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static var tokenizer: String { path("models/tiny-sdxl/tokenizer") }
    static var tokenizer2: String { path("models/tiny-sdxl/tokenizer_2") }
    static var defaultVocabulary: String { DefaultVocabulary.sourcePath }
    static var reference: String { path("reference/tokenizer_ids.json") }
}

/// A fresh temporary folder, removed by the caller.
func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-tokenizer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
