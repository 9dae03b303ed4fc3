import Foundation

/// Paths of the committed fixtures, found from this source file so tests run from any folder.
enum FixturePaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static var singleFile: String { path("models/tiny-sdxl.safetensors") }
    static var pipeline: String { path("models/tiny-sdxl") }
}
