/// The one place that picks a catalog backend from a catalog location: a `postgresql://` or
/// `postgres://` URL is a PostgreSQL server, any other URL is refused, and everything else is the
/// path of a SQLite file.
public enum CatalogStores {
    /// Opens the catalog at `location`. With `create`, a missing catalog is created (a SQLite file with
    /// its folders, or the tables in a PostgreSQL database); without it, a missing one is an error.
    public static func open(_ location: String, create: Bool) throws -> any CatalogStore {
        switch CatalogLocation.urlScheme(location) {
        case nil: return try Catalog.open(at: location, create: create)
        case let scheme? where PostgresLocation.schemes.contains(scheme):
            return try PostgresCatalog.open(PostgresLocation.parse(location), create: create)
        case let scheme?: throw CatalogError.unsupportedURL(scheme: scheme)
        }
    }

    /// The catalog at `location`, or nil when there is none yet (reading commands then see an empty
    /// catalog; nothing is created). A server without the catalog's tables is such an empty catalog.
    public static func openIfPresent(_ location: String) throws -> (any CatalogStore)? {
        switch CatalogLocation.urlScheme(location) {
        case nil: return try Catalog.openIfPresent(at: location)
        case let scheme? where PostgresLocation.schemes.contains(scheme):
            return try PostgresCatalog.openIfPresent(PostgresLocation.parse(location))
        case let scheme?: throw CatalogError.unsupportedURL(scheme: scheme)
        }
    }

    /// Whether a catalog already exists at `location` (a server is asked by `discardIfEmpty` instead).
    public static func exists(_ location: String) -> Bool {
        CatalogLocation.urlScheme(location) == nil ? FileSystem.exists(location) : true
    }

    /// Removes a SQLite catalog a failed first `add` created (see `Catalog.discardIfEmpty`). Tables on a
    /// server stay: other writers may be using them.
    public static func discardIfEmpty(_ location: String) {
        if CatalogLocation.urlScheme(location) == nil { Catalog.discardIfEmpty(at: location) }
    }
}
