import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// Schema versions 2 (the facts of `list --search` and `dups`, the import cache) and 3 (tensors stored
/// against a reference) on catalogs made by a tlkit that knew only version 1, on both backends.
@Suite struct UpgradeTests {
    /// Takes a current catalog back to version 1 as that tlkit left it: without the columns and the
    /// table versions 2 and 3 added, and marked version 1.
    static func downgrade(_ backend: Backend, _ location: String) throws {
        let columns = ["family", "derivative", "trigger_words", "training_tags", "sshs_model_hash"]
        switch backend {
        case .sqlite:
            let queue = try DatabaseQueue(path: location)
            try queue.writeWithoutTransaction { db in
                try #require(try Int.fetchOne(db, sql: "SELECT count(*) FROM blobs WHERE reference IS NOT NULL") == 0, "version 1 had no references")
                try db.execute(sql: "DROP TABLE import_cache; DROP INDEX entries_family")
                for column in columns { try db.execute(sql: "ALTER TABLE entries DROP COLUMN \(column)") }
                // SQLite cannot drop a column with a foreign key: the blobs table is made again as version 1 had it.
                try db.execute(sql: """
                    PRAGMA foreign_keys = OFF;
                    CREATE TABLE blobs_v1 (sha256 TEXT PRIMARY KEY NOT NULL, codec TEXT NOT NULL, raw_size INTEGER NOT NULL,
                                           stored_size INTEGER NOT NULL, data BLOB NOT NULL);
                    INSERT INTO blobs_v1 SELECT sha256, codec, raw_size, stored_size, data FROM blobs;
                    DROP TABLE blobs;
                    ALTER TABLE blobs_v1 RENAME TO blobs;
                    PRAGMA foreign_keys = ON;
                    """)
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier IN ('v2', 'v3'); PRAGMA user_version = 1")
                try db.checkpoint(.truncate)
            }
            try queue.close()
        case .postgres:
            let session = try PostgresSession(PostgresLocation.parse(location))
            try #require(try session.query("SELECT count(*)::bigint FROM blobs WHERE reference IS NOT NULL")[0].decode(Int.self) == 0, "version 1 had no references")
            try session.query("DROP TABLE import_cache")
            try session.query("DROP INDEX entries_family")
            for column in columns { try session.query("ALTER TABLE entries DROP COLUMN \(column)") }
            try session.query("ALTER TABLE blobs DROP COLUMN reference")
            try session.query("UPDATE tlkit_schema SET version = 1")
        }
    }

    static func version(_ backend: Backend, _ location: String) throws -> Int {
        switch backend {
        case .sqlite:
            return try DatabaseQueue(path: location).read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
        case .postgres:
            return try PostgresSession(PostgresLocation.parse(location)).query("SELECT max(version) FROM tlkit_schema")[0].decode(Int.self)
        }
    }

    @Test(arguments: Backend.all) func aVersion1CatalogIsUpgradedAndKeepsItsEntries(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let location = try backend.newLocation(in: folder)
        let path = folder + "/a.safetensors"
        // A file a version-1 tlkit stored as this one does: no tensor with a twin to be stored against.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let values = (0..<(2 * 16 * 256)).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 10_000) / 100_000
        }
        SafeTensorsFixture.write(try SafeTensorsFixture.file([
            ("lora_unet_a.lora_down.weight", .f32, [16, 256], SafeTensorsFixture.floats(Array(values[..<4096]), .f32)),
            ("lora_unet_a.lora_up.weight", .f32, [256, 16], SafeTensorsFixture.floats(Array(values[4096...]), .f32)),
        ]), to: path)
        do {
            let catalog = try CatalogStores.open(location, create: true)
            _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "old", facts: EntryFacts(kind: "tlora", base: "sdxl"))
        }
        try Self.downgrade(backend, location)
        #expect(try Self.version(backend, location) == 1)

        let catalog = try CatalogStores.open(location, create: false)
        #expect(try Self.version(backend, location) == 3)
        let old = try catalog.list()
        #expect(old.map(\.reference) == [Reference(name: "old", version: 1)])
        // What version 1 did not record stays unknown.
        #expect(old[0].facts.base == "sdxl" && old[0].facts.family == nil && old[0].facts.triggerWords == nil)
        #expect(try catalog.verify().isEmpty)
        let rebuilt = try catalog.file(Reference(name: "old"))
        #expect(SafeTensorsFixture.sha256(Array(rebuilt.headerBytes) + Array(rebuilt.dataSection)) == SafeTensorsFixture.sha256(file: path))

        // The new columns and the cache work on the upgraded catalog.
        let second = folder + "/b.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 2), to: second)
        let facts = EntryFacts(kind: "tlora", base: "sdxl", family: "lora", derivative: "pony", triggerWords: ["sks dog"], trainingTags: ["grass"],
                               sshsModelHash: "abc")
        guard case let .added(reference, _) = try catalog.add(file: try SafeTensorsFile.open(second), originalPath: second, name: "new", facts: facts) else {
            Issue.record("not added"); return
        }
        #expect(try catalog.entry(reference).summary.facts == facts)
        #expect(try catalog.list(filter: ListFilter(search: "GRASS")).map(\.reference) == [reference])
        #expect(try catalog.list(filter: ListFilter(base: "pony")).map(\.reference) == [reference])
        let stamp = FileStamp(size: 1, mtimeNanoseconds: 2, inode: 3)
        try catalog.recordImport(host: "h", path: folder + "/b.safetensors", stamp: stamp, reference: reference)
        #expect(try catalog.importCache(host: "h", under: folder) == [folder + "/b.safetensors": ImportRecord(stamp: stamp, reference: reference)])
        #expect(try catalog.importCache(host: "other", under: folder).isEmpty)
        #expect(try catalog.importCache(host: "h", under: folder + "/b").isEmpty)
    }
}
