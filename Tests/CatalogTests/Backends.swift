import Foundation
import Testing
@testable import Catalog
import SafeTensors

/// The catalog backends the shared tests run against: SQLite always; PostgreSQL when
/// `TLKIT_TEST_POSTGRES_URL` names a throwaway server (Scripts/with-postgres.sh starts one). Under
/// `CI=true` the PostgreSQL cases run even without the variable, and fail: they cannot silently vanish.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static let serverURL = ProcessInfo.processInfo.environment["TLKIT_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    static var all: [Backend] {
        serverURL != nil || ProcessInfo.processInfo.environment["CI"] == "true" ? [.sqlite, .postgres] : [.sqlite]
    }

    var testDescription: String { rawValue }

    /// A new, empty catalog location: a file in `folder`, or a fresh database on the test server.
    func newLocation(in folder: String) throws -> String {
        switch self {
        case .sqlite: return folder + "/c.sqlite"
        case .postgres:
            guard let url = Backend.serverURL else {
                throw CatalogError.io("TLKIT_TEST_POSTGRES_URL is not set: the PostgreSQL catalog tests need a server (run them through Scripts/with-postgres.sh)")
            }
            let database = "tlkit_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            try PostgresSession(PostgresLocation.parse(url)).query("CREATE DATABASE \(database)")
            return url + (url.contains("?") ? "&" : "?") + "dbname=" + database
        }
    }

    /// A new, empty catalog of this backend.
    func newCatalog(in folder: String) throws -> any CatalogStore {
        try CatalogStores.open(try newLocation(in: folder), create: true)
    }
}

/// The default arguments the tests use, for catalogs of either backend.
extension CatalogStore {
    func add(file: SafeTensorsFile, originalPath: String?, name: String, tags: [String] = [], facts: EntryFacts = EntryFacts()) throws -> AddOutcome {
        try add(file: file, originalPath: originalPath, name: name, tags: tags, note: nil, facts: facts, level: nil, digests: nil, beforeCommit: {})
    }

    @discardableResult
    func remove(_ reference: Reference) throws -> [Reference] { try remove(reference, allVersions: false) }

    func verify() throws -> [Problem] { try verify(nil) }

    func list() throws -> [EntrySummary] { try list(filter: ListFilter()) }
}
