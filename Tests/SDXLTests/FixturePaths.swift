import Foundation
import TestSupport

/// Paths of the committed fixtures, found from this source file so tests run from any folder.
enum FixturePaths {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static var singleFile: String { path("models/tiny-sdxl.safetensors") }
    static var pipeline: String { path("models/tiny-sdxl") }
}
