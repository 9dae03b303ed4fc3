import Foundation

/// The repository's committed fixtures (Fixtures/), found from this source file so tests run from any folder.
public enum FixtureFolder {
    /// The repository root.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The Fixtures/ folder.
    public static let root = repositoryRoot.appendingPathComponent("Fixtures")

    /// A path under Fixtures/.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}
