import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

@Suite struct SchemaTests {
    static func bytes(_ path: String) -> [UInt8] { [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()) }

    @Test func migratesAnEmptyFileAndCreatesFoldersOnFirstWrite() throws {
        let folder = SafeTensorsFixture.folder()
        let empty = folder + "/empty.sqlite"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let catalog = try Catalog.open(at: empty, create: true)
        #expect(try catalog.list().isEmpty)
        let queue = try DatabaseQueue(path: empty)
        let (appID, version, mode, tables) = try queue.read { db in
            (try Int32.fetchOne(db, sql: "PRAGMA application_id"), try Int.fetchOne(db, sql: "PRAGMA user_version"),
             try String.fetchOne(db, sql: "PRAGMA journal_mode"),
             Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")))
        }
        #expect(appID == Schema.applicationID)
        #expect(version == Schema.version)
        #expect(mode == "wal")
        #expect(tables.isSuperset(of: ["blobs", "entries", "entry_headers", "entry_tensors", "tags"]))
        // Reading a missing catalog is an error and creates nothing; writing creates the folders.
        let nested = folder + "/a/b/catalog.sqlite"
        #expect(throws: CatalogError.noCatalog(path: nested)) { try Catalog.open(at: nested, create: false) }
        #expect(!FileManager.default.fileExists(atPath: folder + "/a"))
        _ = try Catalog.open(at: nested, create: true)
        #expect(FileManager.default.fileExists(atPath: nested))
        // Reopening an existing catalog runs no migration and keeps working.
        #expect(try Catalog.open(at: empty, create: false).list().isEmpty)
    }

    @Test func refusesAForeignSQLiteFileAndLeavesItUnmodified() throws {
        let path = SafeTensorsFixture.folder() + "/other.sqlite"
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me')")
        }
        try queue.close()
        let before = Self.bytes(path)
        for create in [true, false] {
            do {
                _ = try Catalog.open(at: path, create: create)
                Issue.record("a foreign database was opened as a catalog")
            } catch let error as CatalogError {
                guard case .notACatalog = error else { Issue.record("wrong error: \(error)"); continue }
                #expect("\(error)".contains("not a tlkit catalog"))
                #expect("\(error)".contains("notes"))
            }
        }
        #expect(Self.bytes(path) == before)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal") || Self.bytes(path + "-wal").isEmpty)
    }

    @Test func refusesANonSQLiteFileAndLeavesItUnmodified() throws {
        let path = SafeTensorsFixture.folder() + "/adapter.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.file([("w", .f32, [2], SafeTensorsFixture.floats([1, 2], .f32))]), to: path)
        let before = Self.bytes(path)
        #expect(throws: CatalogError.notACatalog(path: path, why: "not an SQLite database")) {
            try Catalog.open(at: path, create: true)
        }
        #expect(Self.bytes(path) == before)
    }

    @Test func refusesACatalogFromANewerTlkitAndLeavesItUnmodified() throws {
        let path = SafeTensorsFixture.folder() + "/newer.sqlite"
        _ = try Catalog.open(at: path, create: true)
        // Simulate a newer tlkit: bump the schema version, checkpoint, and close.
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA user_version = \(Schema.version + 1)")
            try db.checkpoint(.truncate)
        }
        try queue.close()
        let before = Self.bytes(path)
        #expect(throws: CatalogError.newerSchema(path: path, found: Schema.version + 1, known: Schema.version)) {
            try Catalog.open(at: path, create: true)
        }
        #expect(throws: CatalogError.self) { try Catalog.open(at: path, create: false) }
        #expect(Self.bytes(path) == before)
    }
}
