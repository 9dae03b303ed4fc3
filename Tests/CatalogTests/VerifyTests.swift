import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

@Suite struct VerifyTests {
    static func catalogWithTwoEntries() throws -> (Catalog, String) {
        let folder = SafeTensorsFixture.folder()
        let path = folder + "/c.sqlite"
        let catalog = try Catalog.open(at: path, create: true)
        for step in [1, 2] {
            let file = folder + "/s\(step).safetensors"
            SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: step, modules: 2), to: file)
            _ = try catalog.add(file: try SafeTensorsFile.open(file), originalPath: file, name: "run")
        }
        #expect(try catalog.verify().isEmpty)
        return (catalog, path)
    }

    @Test func detectsABlobCorruptedOnPurpose() throws {
        let (catalog, path) = try Self.catalogWithTwoEntries()
        // Flip one byte in the middle of a compressed tensor shared by both versions.
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            let sha = try String.fetchOne(db, sql: """
                SELECT b.sha256 FROM blobs b JOIN entry_tensors t ON t.blob = b.sha256
                WHERE t.name LIKE '%q0' AND b.raw_size > 1000 LIMIT 1
                """)!
            var data = [UInt8](try Data.fetchOne(db, sql: "SELECT data FROM blobs WHERE sha256 = ?", arguments: [sha])!)
            data[data.count / 2] ^= 0x40
            try db.execute(sql: "UPDATE blobs SET data = ? WHERE sha256 = ?", arguments: [Data(data), sha])
        }
        try queue.close()
        let problems = try catalog.verify()
        print(problems)
        #expect(problems.contains { $0.reference == Reference(name: "run", version: 1) })
        #expect(problems.contains { $0.reference == Reference(name: "run", version: 2) })
        #expect(!(try catalog.verify(Reference(name: "run", version: 1))).isEmpty)
        // `get` refuses to hand out the damaged file and leaves no output behind.
        let out = SafeTensorsFixture.folder() + "/out.safetensors"
        let output = try AtomicOutput(out)
        #expect(throws: CatalogError.self) { try catalog.write(Reference(name: "run"), to: output) }
        output.abandon()
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func detectsATamperedHeader() throws {
        let (catalog, path) = try Self.catalogWithTwoEntries()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            let id = try Int64.fetchOne(db, sql: "SELECT id FROM entries WHERE version = 2")!
            var header = [UInt8](try Data.fetchOne(db, sql: "SELECT bytes FROM entry_headers WHERE entry_id = ?", arguments: [id])!)
            // Change a digit of the step count in the metadata: still valid JSON of the same length.
            let text = String(decoding: header, as: UTF8.self)
            let range = text.range(of: "\"200\"")!
            let offset = text.utf8.distance(from: text.startIndex, to: range.lowerBound) + 1
            header[offset] = UInt8(ascii: "9")
            try db.execute(sql: "UPDATE entry_headers SET bytes = ? WHERE entry_id = ?", arguments: [Data(header), id])
        }
        try queue.close()
        let problems = try catalog.verify()
        #expect(problems.count == 1)
        #expect(problems.first?.reference == Reference(name: "run", version: 2))
        #expect(try catalog.verify(Reference(name: "run", version: 1)).isEmpty)
    }

    @Test func detectsAMissingBlob() throws {
        let (catalog, path) = try Self.catalogWithTwoEntries()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
        }
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            try db.execute(sql: "DELETE FROM blobs WHERE sha256 = (SELECT blob FROM entry_tensors WHERE name LIKE '%.q' LIMIT 1)")
        }
        try queue.close()
        #expect(!(try catalog.verify()).isEmpty)
    }
}
