/// Everything the catalog can refuse or fail at, each with a message that names the catalog or the
/// entry and, where possible, what to do.
public enum CatalogError: Error, CustomStringConvertible, Equatable, Sendable {
    case noCatalog(path: String)
    /// A catalog given as a URL; only the scheme is kept, so a password in it is never printed.
    case unsupportedURL(scheme: String)
    /// A catalog URL that cannot be used; the message never repeats the URL (it may hold a password).
    case invalidLocation(String)
    /// The catalog's server failed or refused; `location` is printed without a password.
    case server(location: String, why: String)
    case notACatalog(path: String, why: String)
    case newerSchema(path: String, found: Int, known: Int)
    case notFound(String)
    case invalidName(String, why: String)
    case invalidReference(String, why: String)
    /// A copy would change a version the destination already holds.
    case conflict(String)
    case codec(String)
    case corrupt(String)
    case io(String)

    public var description: String {
        switch self {
        case let .noCatalog(path):
            return "\(path): no catalog here yet (it is created by the first 'tlkit add'; use --catalog PATH or $TLKIT_CATALOG for another one)"
        case let .unsupportedURL(scheme):
            return "\(scheme)://…: catalogs at such URLs are not supported; give a postgresql:// URL or the path of a catalog file (--catalog PATH or $TLKIT_CATALOG)"
        case let .invalidLocation(why): return "invalid catalog URL: \(why)"
        case let .server(location, why): return "\(location): \(why)"
        case let .notACatalog(path, why):
            return "\(path): not a tlkit catalog (\(why)); it was left untouched — give another path with --catalog"
        case let .newerSchema(path, found, known):
            return "\(path): catalog written by a newer tlkit (schema version \(found), this tlkit knows up to \(known)); it was left untouched — upgrade tlkit to use it"
        case let .notFound(what): return what
        case let .invalidName(name, why): return "invalid catalog name '\(name)': \(why)"
        case let .invalidReference(ref, why): return "invalid catalog reference '\(ref)': \(why)"
        case let .conflict(why): return why
        case let .codec(why): return why
        case let .corrupt(why): return why
        case let .io(why): return why
        }
    }

    /// Whether the failure means "no such entry" (callers may want to tell it apart).
    public var isNotFound: Bool { if case .notFound = self { return true }; return false }
}
