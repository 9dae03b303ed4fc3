import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// `get -o -` cannot take back what it has written: a damaged tensor must stop the stream before any
/// of its bytes go out.
@Suite struct CatalogDamagedStreamTests {
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
        let folder = SafeTensorsFixture.folder()
        var r = SplitMix64(seed: 42)
        let names = (0..<6).map { "layer\($0).weight" }
        let tensors = names.map { ($0, DType.f32, [64, 64], SafeTensorsFixture.floats(r.normal(count: 64 * 64), .f32)) }
        let original = try SafeTensorsFixture.file(tensors)
        let input = folder + "/run.safetensors", path = folder + "/c.sqlite"
        SafeTensorsFixture.write(original, to: input)
        let add = try CLI.run(["add", input, "--catalog", path, "--level=-7"])
        #expect(add.status == 0, "\(add.stderr)")
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
        let result = try CLI.run(["get", "run", "-o", "-", "--catalog", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("run@1") && result.stderr.contains(victim), "\(result.stderr)")
        // What went out is exactly the file up to the damaged tensor: nothing of it, nothing after it.
        let end = try Self.offset(of: victim, in: original)
        let written = [UInt8](result.stdoutData)
        #expect(written.count == end, "\(written.count) bytes written, the damaged tensor starts at \(end)")
        #expect(written == Array(original.prefix(written.count)))
    }

    /// A tensor stored against a reference (its previous version) whose reference is gone or of the
    /// wrong size: `get` stops before it (exit 1, naming the reference), `verify` reports it.
    @Test(arguments: ["missing", "wrong size"])
    func getStopsBeforeATensorWhoseReferenceIsDamaged(_ how: String) throws {
        let folder = SafeTensorsFixture.folder()
        var r = SplitMix64(seed: 8)
        let first = r.normal(count: 64 * 64), bias = r.normal(count: 64)
        let second = zip(first, r.normal(count: first.count, scale: 0.02 * 0.008)).map { $0 + $1 }
        let path = folder + "/c.sqlite"
        var files: [[UInt8]] = []
        for values in [first, second] {
            let bytes = try SafeTensorsFixture.file([("layer.bias", .f32, [64], SafeTensorsFixture.floats(bias, .f32)),
                                                     ("layer.weight", .f32, [64, 64], SafeTensorsFixture.floats(values, .f32))])
            let input = folder + "/v\(files.count + 1).safetensors"
            SafeTensorsFixture.write(bytes, to: input)
            #expect(try CLI.run(["add", input, "--name", "run", "--catalog", path]).status == 0)
            files.append(bytes)
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = false
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.write { db in
            let weight = try String.fetchOne(db, sql: """
                SELECT t.blob FROM entry_tensors t JOIN entries e ON e.id = t.entry_id WHERE e.version = 2 AND t.name = 'layer.weight'
                """)!
            #expect(try String.fetchOne(db, sql: "SELECT codec FROM blobs WHERE sha256 = ?", arguments: [weight]) == "xor+shuffle4+zstd")
            let other = how == "missing" ? String(repeating: "0", count: 64)
                : try String.fetchOne(db, sql: "SELECT blob FROM entry_tensors WHERE name = 'layer.bias' LIMIT 1")!
            try db.execute(sql: "UPDATE blobs SET reference = ? WHERE sha256 = ?", arguments: [other, weight])
        }
        try queue.close()
        let result = try CLI.run(["get", "run@2", "-o", "-", "--catalog", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("run@2") && result.stderr.contains("layer.weight") && result.stderr.contains("reference blob"), "\(result.stderr)")
        let end = try Self.offset(of: "layer.weight", in: files[1])
        #expect([UInt8](result.stdoutData) == Array(files[1].prefix(end)))
        let verify = try CLI.run(["verify", "--catalog", path])
        #expect(verify.status == 1 && verify.stdout.contains("reference blob"), "\(verify.stdout)\(verify.stderr)")
        // The first version does not need the reference and reads back whole.
        #expect(try [UInt8](CLI.run(["get", "run@1", "-o", "-", "--catalog", path]).stdoutData) == files[0])
    }

    @Test func anIntactEntryStreamsWhole() throws {
        let (path, original, _) = try Self.catalog()
        let result = try CLI.run(["get", "run", "-o", "-", "--catalog", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect([UInt8](result.stdoutData) == original)
    }

    /// A `blobs` row claiming an impossible raw size (CatalogTests' fuzz regressions) reached through the
    /// catalog: `get` reports the damaged entry, exit 1, no trap.
    @Test(arguments: [Int64(-5), Int64(1) << 62])
    func getRefusesADamagedRawSize(_ rawSize: Int64) throws {
        let (path, _, names) = try Self.catalog()
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "UPDATE blobs SET raw_size = ? WHERE sha256 = (SELECT blob FROM entry_tensors WHERE name = ?)",
                           arguments: [rawSize, names[2]])
        }
        try queue.close()
        let result = try CLI.run(["get", "run", "-o", "-", "--catalog", path])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains(names[2]), "\(result.stderr)")
    }
}
