import Foundation
import GRDB

/// A tlkit adapter catalog: one SQLite file holding deduplicated, compressed tensors and the original
/// headers, so every stored file can be rebuilt byte for byte.
///
/// The operations live in extensions, one file each: `CatalogAdd`, `CatalogRead`, `CatalogEdit`,
/// `CatalogVerify`.
public final class Catalog: CatalogStore, @unchecked Sendable {
    public let path: String
    public var location: String { path }
    let store: Store

    private init(path: String, store: Store) {
        self.path = path
        self.store = store
    }

    /// Opens the catalog at `path`. With `create`, a missing file (and its folders) or an empty one is
    /// made into a catalog; without it, a missing catalog is an error. A file that is not a catalog, or
    /// one from a newer tlkit, is refused before anything is written to it.
    public static func open(at path: String, create: Bool) throws -> Catalog {
        Catalog(path: path, store: try Store(path: path, create: create))
    }

    /// The catalog at `path`, or nil when there is no file there yet (reading commands then see an empty
    /// catalog; nothing is created).
    public static func openIfPresent(at path: String) throws -> Catalog? {
        if let scheme = CatalogLocation.urlScheme(path) { throw CatalogError.unsupportedURL(scheme: scheme) }
        return FileSystem.exists(path) ? try open(at: path, create: false) : nil
    }

    /// Removes the catalog at `path`, with SQLite's side files, when it holds nothing (a failed first
    /// `add` made it); the folders stay. One with entries, perhaps added meanwhile by another process, stays.
    public static func discardIfEmpty(at path: String) {
        guard CatalogLocation.urlScheme(path) == nil, FileSystem.exists(path) else { return }
        do {
            let catalog = try open(at: path, create: false)
            let entries = try catalog.store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM entries") ?? 0 }
            guard entries == 0 else { return }
        } catch {
            return
        }
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    }

    /// The latest version of `name`, or nil when there is no such name.
    public func latestVersion(of name: String) throws -> Int? {
        try store.read { db in try Int.fetchOne(db, sql: "SELECT max(version) FROM entries WHERE name = ?", arguments: [name]) }
    }

    /// The row id of the entry `reference` names (the latest version when none is given).
    func entryID(_ db: Database, _ reference: Reference) throws -> (id: Int64, version: Int) {
        let row: Row?
        if let version = reference.version {
            row = try Row.fetchOne(db, sql: "SELECT id, version FROM entries WHERE name = ? AND version = ?",
                                   arguments: [reference.name, version])
        } else {
            row = try Row.fetchOne(db, sql: "SELECT id, version FROM entries WHERE name = ? ORDER BY version DESC LIMIT 1",
                                   arguments: [reference.name])
        }
        guard let row else { throw try notFound(db, reference) }
        return (row["id"], row["version"])
    }

    private func notFound(_ db: Database, _ reference: Reference) throws -> CatalogError {
        let versions = try Int.fetchAll(db, sql: "SELECT version FROM entries WHERE name = ? ORDER BY version", arguments: [reference.name])
        return Catalog.notFound(reference, versions: versions, location: path)
    }

    /// "No such entry" or "no such version" (with the versions there are), for any backend.
    static func notFound(_ reference: Reference, versions: [Int], location: String) -> CatalogError {
        if versions.isEmpty {
            return .notFound("\(reference): no such entry in the catalog \(location) (see 'tlkit list')")
        }
        return .notFound("\(reference): no such version in the catalog \(location); \(reference.name) has versions \(versions.map(String.init).joined(separator: ", "))")
    }
}
