import Foundation
import GRDB
import Testing
@testable import Catalog
import SafeTensors

/// `get -o -` cannot take back what it has written: a damaged tensor must stop the stream before any
/// of its bytes go out.
@Suite struct DamagedStreamTests {
    /// Replaces the stored bytes of the blob of `tensor` (entry `run@1`) with `transform` of them.
    static func damage(_ path: String, tensor: String, _ transform: ([UInt8]) -> [UInt8]) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            let sha = try String.fetchOne(db, sql: "SELECT blob FROM entry_tensors WHERE name = ? LIMIT 1", arguments: [tensor])!
            let data = [UInt8](try Data.fetchOne(db, sql: "SELECT data FROM blobs WHERE sha256 = ?", arguments: [sha])!)
            try db.execute(sql: "UPDATE blobs SET data = ? WHERE sha256 = ?", arguments: [Data(transform(data)), sha])
        }
        try queue.close()
    }

    /// A catalog holding one file of distinct tensors stored without compression (so a flipped bit
    /// decodes fine and only its hash tells), and that file's bytes.
    static func catalog() throws -> (path: String, original: [UInt8], names: [String]) {
        let folder = Fixture.folder()
        var r = Random(seed: 42)
        let names = (0..<6).map { "layer\($0).weight" }
        let tensors = names.map { ($0, DType.f32, [64, 64], Fixture.floats(r.normal(count: 64 * 64), .f32)) }
        let original = try Fixture.file(tensors)
        let input = folder + "/run.safetensors", path = folder + "/c.sqlite"
        Fixture.write(original, to: input)
        let add = try Helper.run(["add", input, "--catalog", path, "--level=-7"])
        #expect(add.status == 0, "\(add.err)")
        return (path, original, names)
    }

    /// Where `tensor`'s bytes start in the file.
    static func offset(of tensor: String, in bytes: [UInt8]) throws -> Int {
        let file = try SafeTensorsFile.parse(bytes: bytes, name: "original")
        return file.header.dataStart + (try file.info(tensor)).begin
    }

    @Test(arguments: ["flip", "truncate"])
    func getToStandardOutputStopsBeforeADamagedTensor(_ how: String) throws {
        let (path, original, names) = try Self.catalog()
        let victim = names[3]
        try Self.damage(path, tensor: victim) { data in
            var data = data
            if how == "flip" { data[data.count / 2] ^= 0x40 } else { data.removeLast(data.count / 2) }
            return data
        }
        let result = try Helper.run(["get", "run", "-o", "-", "--catalog", path])
        #expect(result.status == 1)
        #expect(result.err.contains("run@1") && result.err.contains(victim), "\(result.err)")
        // What went out is exactly the file up to the damaged tensor: nothing of it, nothing after it.
        let end = try Self.offset(of: victim, in: original)
        #expect(result.bytes.count == end, "\(result.bytes.count) bytes written, the damaged tensor starts at \(end)")
        #expect(result.bytes == Array(original.prefix(result.bytes.count)))
    }

    @Test func anIntactEntryStreamsWhole() throws {
        let (path, original, _) = try Self.catalog()
        let result = try Helper.run(["get", "run", "-o", "-", "--catalog", path])
        #expect(result.status == 0, "\(result.err)")
        #expect(result.bytes == original)
    }
}
