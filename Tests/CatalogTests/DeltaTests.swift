import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// Tensors stored as their XOR with a reference blob (`xor+shuffleN+zstd`, `blobs.reference`): chosen
/// only where it is smaller, rebuilt byte for byte, kept by `gc` while referenced, carried by copies,
/// and refused clearly when the reference is damaged.
@Suite struct DeltaTests {
    /// A blob row as the tests look at it.
    struct BlobRow: Equatable {
        let codec: String
        let reference: String?
        let rawSize: Int
        let stored: Int
    }

    /// Every blob of `catalog`, by hash, read straight from its database.
    static func blobs(_ catalog: any CatalogStore) throws -> [String: BlobRow] {
        var rows: [String: BlobRow] = [:]
        if let sqlite = catalog as? Catalog {
            try sqlite.store.read { db in
                for row in try Row.fetchAll(db, sql: "SELECT sha256, codec, reference, raw_size, stored_size FROM blobs") {
                    rows[row[0]] = BlobRow(codec: row[1], reference: row[2], rawSize: row[3], stored: row[4])
                }
            }
        } else if let server = catalog as? PostgresCatalog {
            for row in try server.session.query("SELECT sha256, codec, reference, raw_size, stored_size FROM blobs") {
                let (sha, codec, reference, rawSize, stored) = try row.decode((String, String, String?, Int, Int).self)
                rows[sha] = BlobRow(codec: codec, reference: reference, rawSize: rawSize, stored: stored)
            }
        }
        return rows
    }

    /// Runs `sql` on the catalog's database (SQLite with foreign keys off, so a test may break them).
    static func execute(_ catalog: any CatalogStore, _ sql: String) throws {
        if let sqlite = catalog as? Catalog {
            var configuration = Configuration()
            configuration.foreignKeysEnabled = false
            let queue = try DatabaseQueue(path: sqlite.path, configuration: configuration)
            try queue.write { db in try db.execute(sql: sql) }
            try queue.close()
        } else if let server = catalog as? PostgresCatalog {
            try server.session.query(sql)
        }
    }

    /// The official training layout of `modules` attention projections at `rank` (width 256): frozen
    /// `base_*` tensors from a fixed seed, trainable ones equal to them plus a drift of about 0.8 % of
    /// the values' spread per checkpoint (`step`), accumulated as training does.
    static func checkpoint(step: Int, modules: Int = 3, rank: Int = 16, width: Int = 256) throws -> [UInt8] {
        var tensors: [(String, DType, [Int], [UInt8])] = []
        for m in 0..<modules {
            var base = SplitMix64(seed: UInt64(500 + m))
            let q0 = base.normal(count: rank * width), p0 = base.normal(count: width * rank), l0 = base.normal(count: rank, scale: 0.1)
            var q = q0, p = p0, l = l0
            var drift = SplitMix64(seed: UInt64(9_000 + m))
            for _ in 0..<step {
                q = zip(q, drift.normal(count: q.count, scale: 0.02 * 0.008)).map { $0 + $1 }
                p = zip(p, drift.normal(count: p.count, scale: 0.02 * 0.008)).map { $0 + $1 }
                l = zip(l, drift.normal(count: l.count, scale: 0.1 * 0.008)).map { $0 + $1 }
            }
            let prefix = "down_blocks.1.attentions.0.transformer_blocks.\(m).attn1.processor.to_q_lora"
            tensors += [("\(prefix).q_layer.weight", .f32, [rank, width], SafeTensorsFixture.floats(q, .f32)),
                        ("\(prefix).p_layer.weight", .f32, [width, rank], SafeTensorsFixture.floats(p, .f32)),
                        ("\(prefix).lambda_layer", .f32, [1, rank], SafeTensorsFixture.floats(l, .f32)),
                        ("\(prefix).base_q.weight", .f32, [rank, width], SafeTensorsFixture.floats(q0, .f32)),
                        ("\(prefix).base_p.weight", .f32, [width, rank], SafeTensorsFixture.floats(p0, .f32)),
                        ("\(prefix).base_lambda", .f32, [1, rank], SafeTensorsFixture.floats(l0, .f32))]
        }
        return try SafeTensorsFixture.file(tensors, metadata: ["tlora.steps": "\(step * 100)"])
    }

    /// Adds checkpoints 1…`steps` of the series as versions of `run`; returns their paths.
    static func addSeries(_ catalog: any CatalogStore, steps: Int = 3, in folder: String) throws -> [String] {
        try (1...steps).map { step in
            let path = folder + "/ckpt-\(step).safetensors"
            SafeTensorsFixture.write(try checkpoint(step: step), to: path)
            _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "run")
            return path
        }
    }

    /// `get` of `reference` into a file and its SHA-256.
    static func getHash(_ catalog: any CatalogStore, _ reference: Reference, in folder: String) throws -> String {
        let path = folder + "/out-\(UUID().uuidString).safetensors"
        let out = try AtomicOutput(path)
        try catalog.write(reference, to: out)
        try out.commit()
        return SafeTensorsFixture.sha256(file: path)
    }

    /// The content hash of the tensor `suffix` names in the file at `path`.
    static func tensorHash(_ path: String, _ suffix: String) throws -> String {
        let file = try SafeTensorsFile.open(path)
        let info = file.tensors.first { $0.name.hasSuffix(suffix) }!
        return SafeTensorsFixture.sha256(Array(file.rawBytes(info)))
    }

    @Test(arguments: Backend.all) func trainableTensorsAreStoredAgainstTheirFrozenTwins(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        let paths = try Self.addSeries(catalog, in: folder)
        let blobs = try Self.blobs(catalog)
        for path in paths {
            let file = try SafeTensorsFile.open(path)
            for info in file.tensors where info.name.hasSuffix(".q_layer.weight") || info.name.hasSuffix(".p_layer.weight") {
                let sha = SafeTensorsFixture.sha256(Array(file.rawBytes(info)))
                let row = try #require(blobs[sha])
                let twin = info.name.replacingOccurrences(of: ".q_layer.weight", with: ".base_q.weight")
                    .replacingOccurrences(of: ".p_layer.weight", with: ".base_p.weight")
                let twinInfo = try #require(file.tensors.first { $0.name == twin })
                #expect(row.codec == "xor+shuffle4+zstd", "\(info.name)")
                #expect(row.reference == SafeTensorsFixture.sha256(Array(file.rawBytes(twinInfo))), "\(info.name)")
                // Smaller than the tensor's plain encoding.
                let plain = try Codec.encode(file.rawBytes(info), dtype: .f32, level: Codec.defaultLevel, workers: 0).1.count
                #expect(row.stored < plain * 9 / 10, "\(info.name): \(row.stored) stored, \(plain) plain")
            }
        }
        // References are stored plainly: chains are one step deep.
        for row in blobs.values { if let reference = row.reference { #expect(blobs[reference]?.reference == nil) } }
        for (step, path) in paths.enumerated() {
            #expect(try Self.getHash(catalog, Reference(name: "run", version: step + 1), in: folder) == SafeTensorsFixture.sha256(file: path))
        }
        #expect(try catalog.verify().isEmpty)
        // `show` names the codec and the stored size of each tensor.
        let detail = try catalog.entry(Reference(name: "run", version: 2))
        #expect(detail.tensors.contains { $0.codec == "xor+shuffle4+zstd" && $0.stored > 0 && $0.stored < $0.size })
    }

    @Test(arguments: Backend.all) func unrelatedTensorsAreStoredPlainly(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        var r = SplitMix64(seed: 77)
        // Twins and previous versions present, but unrelated values: the delta is no smaller.
        for version in 1...2 {
            let path = folder + "/u\(version).safetensors"
            SafeTensorsFixture.write(try SafeTensorsFixture.file([
                ("m.q_layer.weight", .f32, [16, 256], SafeTensorsFixture.floats(r.normal(count: 4096), .f32)),
                ("m.base_q.weight", .f32, [16, 256], SafeTensorsFixture.floats(r.normal(count: 4096), .f32)),
            ]), to: path)
            _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "u")
            #expect(try Self.getHash(catalog, Reference(name: "u", version: version), in: folder) == SafeTensorsFixture.sha256(file: path))
        }
        let blobs = try Self.blobs(catalog)
        #expect(blobs.count == 4)
        #expect(blobs.values.allSatisfy { $0.codec == "shuffle4+zstd" && $0.reference == nil })
        #expect(try catalog.verify().isEmpty)
    }

    /// Elements of the tensor of `twoVersions`: large enough that the encoder judges by a sample.
    static let versionedCount = 1 << 17

    /// Two versions of one tensor (no twin): the second is stored against the first.
    static func twoVersions(_ catalog: any CatalogStore, in folder: String) throws -> (String, String) {
        var r = SplitMix64(seed: 31)
        let first = r.normal(count: versionedCount)
        let second = zip(first, r.normal(count: versionedCount, scale: 0.02 * 0.006)).map { $0 + $1 }
        var paths: [String] = []
        for (version, values) in [first, second].enumerated() {
            let path = folder + "/w\(version + 1).safetensors"
            SafeTensorsFixture.write(try SafeTensorsFixture.file([("layer.weight", .f32, [versionedCount / 128, 128], SafeTensorsFixture.floats(values, .f32))]), to: path)
            _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "w")
            paths.append(path)
        }
        return (paths[0], paths[1])
    }

    @Test func largeTensorsAreJudgedByASampleSmallOnesInFull() throws {
        var r = SplitMix64(seed: 12)
        let count = 4 * Codec.sampleBytes / 4 + 1000
        let reference = r.normal(count: count), unrelated = r.normal(count: count)
        let close = zip(reference, r.normal(count: count, scale: 0.02 * 0.008)).map { $0 + $1 }
        let (tensor, near, far) = (SafeTensorsFixture.floats(close, .f32), SafeTensorsFixture.floats(reference, .f32),
                                   SafeTensorsFixture.floats(unrelated, .f32))
        func worthTrying(_ bytes: [UInt8], _ references: [[UInt8]]) throws -> [Int?] {
            try bytes.withUnsafeBytes { b in
                try references[0].withUnsafeBytes { r0 in
                    try references.last!.withUnsafeBytes { r1 in
                        try Codec.encodingsWorthTrying(b, references: references.count == 1 ? [r0] : [r0, r1], dtype: .f32, level: 1,
                                                       output: ReusableBuffer(), scratch: ReusableBuffer())
                    }
                }
            }
        }
        // Judged by its first part: only the winner is encoded in full.
        #expect(try worthTrying(tensor, [far, near]) == [1])
        #expect(try worthTrying(tensor, [far]) == [nil])
        // A small tensor: every encoding is made in full.
        let small = Array(tensor.prefix(4 * Codec.sampleBytes)), smallReference = Array(near.prefix(4 * Codec.sampleBytes))
        #expect(try worthTrying(small, [smallReference]) == [nil, 0])
        // The delta decodes back to the tensor, given the reference.
        let (codec, stored) = try tensor.withUnsafeBytes { t in
            try near.withUnsafeBytes { n in
                let output = ReusableBuffer()
                let (codec, size) = try #require(try Codec.encodeDelta(t, reference: n, dtype: .f32, level: 1, workers: 0,
                                                                       into: output, scratch: ReusableBuffer()))
                return (codec, Array(UnsafeRawBufferPointer(output.prefix(size))))
            }
        }
        #expect(codec == .xorShuffleZstd(width: 4) && stored.count < tensor.count * 3 / 4)
        var back = [UInt8](repeating: 0, count: tensor.count)
        try stored.withUnsafeBytes { s in
            try near.withUnsafeBytes { n in
                try back.withUnsafeMutableBytes { out in
                    try Codec.decode(codecName: codec.name, rawSize: tensor.count, stored: s, reference: n) { _ in out }
                }
            }
        }
        #expect(back == tensor)
        // Without its reference it is refused.
        #expect(throws: CatalogError.self) {
            try stored.withUnsafeBytes { s in
                try back.withUnsafeMutableBytes { out in try Codec.decode(codecName: codec.name, rawSize: tensor.count, stored: s) { _ in out } }
            }
        }
    }

    @Test(arguments: Backend.all) func gcKeepsAReferencedBlobUntilTheBlobsNamingItAreGone(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        let (first, second) = try Self.twoVersions(catalog, in: folder)
        let a = try Self.tensorHash(first, "layer.weight"), b = try Self.tensorHash(second, "layer.weight")
        let blobs = try Self.blobs(catalog)
        #expect(blobs[a] == BlobRow(codec: "shuffle4+zstd", reference: nil, rawSize: 4 * Self.versionedCount, stored: blobs[a]!.stored))
        #expect(blobs[b]?.codec == "xor+shuffle4+zstd" && blobs[b]?.reference == a)
        // The second version alone needs the first's tensor too: `list` counts it.
        let summaries = try catalog.list()
        #expect(summaries[1].stored > blobs[a]!.stored + blobs[b]!.stored)

        // No entry uses `a` once version 1 is gone, but `b` is stored against it: gc keeps it.
        try catalog.remove(Reference(name: "w", version: 1))
        #expect(try catalog.gc().blobsRemoved == 0)
        #expect(try Self.blobs(catalog).keys.sorted() == [a, b].sorted())
        #expect(try Self.getHash(catalog, Reference(name: "w", version: 2), in: folder) == SafeTensorsFixture.sha256(file: second))
        #expect(try catalog.verify().isEmpty)

        // With version 2 gone too, both go.
        try catalog.remove(Reference(name: "w", version: 2))
        let stats = try catalog.gc()
        #expect(stats.blobsRemoved == 2)
        #expect(stats.storedBytesRemoved == blobs[a]!.stored + blobs[b]!.stored)
        #expect(try Self.blobs(catalog).isEmpty)
    }

    @Test(arguments: Backend.all) func aDamagedOrMissingReferenceIsAClearError(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        let paths = try Self.addSeries(catalog, steps: 1, in: folder)
        let q = try Self.tensorHash(paths[0], "0.attn1.processor.to_q_lora.q_layer.weight")
        let lambda = try Self.tensorHash(paths[0], "0.attn1.processor.to_q_lora.base_lambda")
        #expect(try Self.blobs(catalog)[q]?.reference != nil)

        func expectRefused(_ fragment: String) throws {
            let out = folder + "/refused.safetensors"
            let output = try AtomicOutput(out)
            do {
                try catalog.write(Reference(name: "run"), to: output)
                Issue.record("a damaged reference was not refused")
            } catch let error as CatalogError {
                guard case .corrupt = error else { Issue.record("wrong error: \(error)"); return }
                #expect("\(error)".contains(fragment), "\(error)")
            }
            output.abandon()
            #expect(!FileManager.default.fileExists(atPath: out))
            let problems = try catalog.verify()
            #expect(problems.contains { $0.reference == Reference(name: "run", version: 1) && $0.message.contains(fragment) }, "\(problems)")
        }

        // A reference of another size (a small tensor's blob).
        try Self.execute(catalog, "UPDATE blobs SET reference = '\(lambda)' WHERE sha256 = '\(q)'")
        try expectRefused("the reference blob holds 64 bytes, expected 16384")

        // A reference whose row is gone.
        let missing = String(repeating: "ab", count: 32)
        if backend == .postgres { try Self.execute(catalog, "ALTER TABLE blobs DROP CONSTRAINT blobs_reference_fkey") }
        try Self.execute(catalog, "UPDATE blobs SET reference = '\(missing)' WHERE sha256 = '\(q)'")
        try expectRefused("its reference blob \(missing.prefix(12))… is missing")
    }

    @Test(arguments: TransferTests.Pair.all) func copiesCarryReferencesAlong(pair: TransferTests.Pair) throws {
        let folder = SafeTensorsFixture.folder()
        let source = try pair.from.newCatalog(in: folder)
        let paths = try Self.addSeries(source, in: folder)
        let (_, second) = try Self.twoVersions(source, in: folder)
        // Only version 2 of `w` stays: its reference is used by no entry and must travel anyway.
        try source.remove(Reference(name: "w", version: 1))

        let destination = try pair.to.newCatalog(in: folder + "/to")
        let result = try CatalogTransfer.copy([Reference(name: "run"), Reference(name: "w")], allVersions: true, from: source, to: destination)
        #expect(result.items.map(\.reference.description) == ["run@1", "run@2", "run@3", "w@2"])
        #expect(result.tensorsSent == (try source.totals().blobs))
        // Stored as the source stores them: same codecs and references, nothing recompressed.
        #expect(try Self.blobs(destination) == (try Self.blobs(source)))
        for (step, path) in paths.enumerated() {
            #expect(try Self.getHash(destination, Reference(name: "run", version: step + 1), in: folder) == SafeTensorsFixture.sha256(file: path))
        }
        #expect(try Self.getHash(destination, Reference(name: "w", version: 2), in: folder) == SafeTensorsFixture.sha256(file: second))
        #expect(try destination.verify().isEmpty)
        #expect(try destination.list().map(\.stored) == (try source.list().map(\.stored)))
        // A second copy sends nothing.
        let again = try CatalogTransfer.copy([Reference(name: "w", version: 2)], allVersions: false, from: source, to: destination)
        #expect(again.tensorsSent == 0)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// Stores the file at `path` as `name`@1 in a catalog of schema version 1 at `location`, with the
    /// statements a version-1 tlkit ran (every tensor encoded plainly).
    static func writeVersion1Catalog(_ backend: Backend, at location: String, file path: String, name: String) throws {
        let file = try SafeTensorsFile.open(path)
        let tensors = file.tensors.map { info in
            (info, SafeTensorsFixture.sha256(Array(file.rawBytes(info))), try! Codec.encode(file.rawBytes(info), dtype: info.dtype, level: 1, workers: 0))
        }
        let header = Array(file.headerBytes), fileHash = SafeTensorsFixture.sha256(file: path)
        let dataHash = "0x" + SafeTensorsFixture.sha256(Array(file.dataSection))
        let stored = header.count + tensors.reduce(0) { $0 + $1.2.1.count }
        switch backend {
        case .sqlite:
            let queue = try DatabaseQueue(path: location)
            try Schema.migrator.migrate(queue, upTo: "v1")
            try queue.write { db in
                for (info, sha, (codec, bytes)) in tensors {
                    try db.execute(sql: "INSERT OR IGNORE INTO blobs (sha256, codec, raw_size, stored_size, data) VALUES (?, ?, ?, ?, ?)",
                                   arguments: [sha, codec.name, info.byteCount, bytes.count, Data(bytes)])
                }
                try db.execute(sql: """
                    INSERT INTO entries (name, version, sha256, data_hash, size, stored, added_bytes, tensor_count, added_at)
                    VALUES (?, 1, ?, ?, ?, ?, ?, ?, '2025-01-01T00:00:00Z')
                    """, arguments: [name, fileHash, dataHash, file.header.fileLength, stored, stored, tensors.count])
                let id = db.lastInsertedRowID
                try db.execute(sql: "INSERT INTO entry_headers (entry_id, bytes) VALUES (?, ?)", arguments: [id, Data(header)])
                for (ordinal, (info, sha, _)) in tensors.enumerated() {
                    try db.execute(sql: "INSERT INTO entry_tensors (entry_id, ordinal, name, blob) VALUES (?, ?, ?, ?)", arguments: [id, ordinal, info.name, sha])
                }
            }
            #expect(try queue.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") } == 1)
            try queue.close()
        case .postgres:
            let session = try PostgresSession(PostgresLocation.parse(location))
            for statement in PostgresSchema.v1 { try session.query(statement) }
            for (info, sha, (codec, bytes)) in tensors {
                let id = try session.query("INSERT INTO blobs (sha256, codec, raw_size, stored_size) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
                                           [sha, codec.name, info.byteCount, bytes.count]).first?.decode(Int64.self)
                if let id { try session.query("INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, 0, decode($2, 'hex'))", [id, Self.hex(bytes)]) }
            }
            let id = try session.query("""
                INSERT INTO entries (name, version, sha256, data_hash, size, stored, added_bytes, tensor_count, added_at)
                VALUES ($1, 1, $2, $3, $4, $5, $6, $7, '2025-01-01T00:00:00Z') RETURNING id
                """, [name, fileHash, dataHash, file.header.fileLength, stored, stored, tensors.count])[0].decode(Int64.self)
            try session.query("INSERT INTO entry_headers (entry_id, bytes) VALUES ($1, decode($2, 'hex'))", [id, Self.hex(header)])
            for (ordinal, (info, sha, _)) in tensors.enumerated() {
                try session.query("INSERT INTO entry_tensors (entry_id, ordinal, name, blob) VALUES ($1, $2, $3, $4)", [id, ordinal, info.name, sha])
            }
            #expect(try session.query("SELECT version FROM tlkit_schema")[0].decode(Int.self) == 1)
        }
    }

    @Test(arguments: Backend.all) func aVersion1CatalogIsUpgradedAndKeepsItsEntries(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let location = try backend.newLocation(in: folder)
        let first = folder + "/ckpt-1.safetensors"
        SafeTensorsFixture.write(try Self.checkpoint(step: 1), to: first)
        try Self.writeVersion1Catalog(backend, at: location, file: first, name: "run")

        // Opening upgrades it; what it held reads back unchanged.
        let catalog = try CatalogStores.open(location, create: false)
        if let sqlite = catalog as? Catalog {
            #expect(try sqlite.store.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") } == Schema.version)
        } else if let server = catalog as? PostgresCatalog {
            #expect(try server.session.query("SELECT max(version) FROM tlkit_schema")[0].decode(Int.self) == PostgresSchema.version)
        }
        // The column references need is there.
        if let sqlite = catalog as? Catalog {
            #expect(try sqlite.store.read { db in try db.columns(in: "blobs").map(\.name) }.contains("reference"))
        } else if let server = catalog as? PostgresCatalog {
            #expect(try server.session.query("SELECT count(*)::bigint FROM information_schema.columns WHERE table_name = 'blobs' AND column_name = 'reference'")[0]
                .decode(Int.self) == 1)
        }
        #expect(try Self.getHash(catalog, Reference(name: "run", version: 1), in: folder) == SafeTensorsFixture.sha256(file: first))
        #expect(try catalog.verify().isEmpty)

        // The next checkpoint is stored against the version-1 blobs.
        let second = folder + "/ckpt-2.safetensors"
        SafeTensorsFixture.write(try Self.checkpoint(step: 2), to: second)
        _ = try catalog.add(file: try SafeTensorsFile.open(second), originalPath: second, name: "run")
        let q = try Self.tensorHash(second, "0.attn1.processor.to_q_lora.q_layer.weight")
        #expect(try Self.blobs(catalog)[q]?.codec == "xor+shuffle4+zstd")
        #expect(try Self.getHash(catalog, Reference(name: "run", version: 2), in: folder) == SafeTensorsFixture.sha256(file: second))
        #expect(try Self.getHash(catalog, Reference(name: "run", version: 1), in: folder) == SafeTensorsFixture.sha256(file: first))
        #expect(try catalog.verify().isEmpty)
        // Reopening finds it current.
        #expect(try CatalogStores.open(location, create: false).list().count == 2)
    }
}
