/// A catalog reference: `NAME` (the latest version) or `NAME@VERSION`.
public struct Reference: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// nil means the latest version.
    public let version: Int?

    public init(name: String, version: Int? = nil) {
        self.name = name
        self.version = version
    }

    /// Parses `NAME` or `NAME@VERSION`. The version is what follows the last `@` when that is a
    /// positive integer; a trailing `@` with anything else is an error (names cannot contain `@`).
    public static func parse(_ text: String) throws -> Reference {
        var body = Substring(text)
        if body.hasPrefix(Reference.catalogPrefix) { body = body.dropFirst(Reference.catalogPrefix.count) }
        guard let at = body.lastIndex(of: "@") else {
            try Reference.validate(name: String(body))
            return Reference(name: String(body))
        }
        let name = String(body[..<at])
        let suffix = body[body.index(after: at)...]
        guard let version = Int(suffix), version >= 1, suffix.allSatisfy(\.isASCII) else {
            throw CatalogError.invalidReference(text, why: "the part after '@' must be a version number ≥ 1, e.g. \(name)@2")
        }
        try Reference.validate(name: name)
        return Reference(name: name, version: version)
    }

    /// Checks a name for storing: not empty, no `@`, no control characters, not starting with `-`.
    public static func validate(name: String) throws {
        if name.isEmpty { throw CatalogError.invalidName(name, why: "it is empty") }
        if name.contains("@") { throw CatalogError.invalidName(name, why: "'@' separates the version (NAME@VERSION)") }
        if name.hasPrefix("-") { throw CatalogError.invalidName(name, why: "it must not start with '-'") }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw CatalogError.invalidName(name, why: "it contains control characters")
        }
        if name.hasPrefix(catalogPrefix) { throw CatalogError.invalidName(name, why: "'catalog:' is reserved to force catalog lookup") }
    }

    /// `text` made into a valid name: '@' and control characters become '_', and a name that would be
    /// empty, start with '-' or with `catalog:` gets a leading '_'. Valid names come back unchanged.
    public static func sanitizedName(_ text: String) -> String {
        var name = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            scalar == "@" || scalar.properties.generalCategory == .control ? "_" : scalar
        }))
        if name.isEmpty || name.hasPrefix("-") || name.hasPrefix(catalogPrefix) { name = "_" + name }
        return name
    }

    /// The prefix that forces an adapter argument to be read from the catalog.
    public static let catalogPrefix = "catalog:"

    public var description: String { version.map { "\(name)@\($0)" } ?? name }
}

/// Where an adapter argument points: a file (or `-` for stdin) or a catalog entry.
public enum AdapterSource: Equatable, Sendable {
    case file(String)
    case catalog(Reference)

    /// Resolves an argument as every adapter-taking command does: `-` is stdin, `catalog:NAME` forces the
    /// catalog, an existing path wins, anything else is read as `NAME` / `NAME@VERSION`.
    public static func resolve(_ argument: String, fileExists: (String) -> Bool = FileSystem.exists) throws -> AdapterSource {
        if argument == "-" { return .file("-") }
        if argument.hasPrefix(Reference.catalogPrefix) { return .catalog(try Reference.parse(argument)) }
        if fileExists(argument) { return .file(argument) }
        do {
            return .catalog(try Reference.parse(argument))
        } catch {
            throw CatalogError.notFound("\(argument): no such file, and not a catalog reference (NAME or NAME@VERSION)")
        }
    }
}
