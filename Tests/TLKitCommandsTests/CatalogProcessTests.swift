import Foundation
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// Real processes against one catalog file: killed mid-add, and racing each other.
@Suite(.serialized) struct CatalogProcessTests {
    /// A file of `megabytes` of random-ish fp32 data in tensors of 4 MB.
    static func bigFile(_ path: String, megabytes: Int, seed: UInt64) throws {
        var r = SplitMix64(seed: seed)
        let chunk = SafeTensorsFixture.floats(r.normal(count: 1 << 20), .f32)
        var tensors: [(String, DType, [Int], [UInt8])] = []
        for i in 0..<(megabytes / 4) {
            var bytes = chunk
            bytes.withUnsafeMutableBytes { raw in
                // Make every tensor distinct so each is compressed and stored.
                raw.storeBytes(of: UInt64(i) &* 0x9E37_79B9 ^ seed, toByteOffset: 0, as: UInt64.self)
            }
            tensors.append(("t\(i)", .f32, [1 << 20], bytes))
        }
        SafeTensorsFixture.write(try SafeTensorsFixture.file(tensors), to: path)
    }

    @Test func sigkillDuringALargeAddLeavesTheCatalogAsItWas() throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = folder + "/c.sqlite"
        let small = folder + "/small.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 1, modules: 2), to: small)
        #expect(try CLI.run(["add", small, "--name", "kept", "--catalog", catalog]).status == 0)
        let before = try Catalog.open(at: catalog, create: false).totals()

        let big = folder + "/big.safetensors"
        try Self.bigFile(big, megabytes: 384, seed: 7)
        let process = try CLI.start(["add", big, "--name", "partial", "--level", "9", "--catalog", catalog])
        // Wait until the add is inside its write transaction (the write-ahead log grows), then kill it.
        let start = Date()
        var sawWrites = false
        while Date().timeIntervalSince(start) < 120 && process.isRunning {
            if (FileSystem.size(catalog + "-wal") ?? 0) > 32 << 20 { sawWrites = true; break }
            usleep(2_000)
        }
        #expect(process.isRunning, "the add finished before it could be killed; make the file bigger")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(sawWrites)

        let after = try Catalog.open(at: catalog, create: false)
        #expect(try after.list().map(\.reference) == [Reference(name: "kept", version: 1)])
        #expect(try after.verify().isEmpty)
        let totals = try after.totals()
        #expect(totals.blobs == before.blobs && totals.storedBytes == before.storedBytes)
        let verify = try CLI.run(["verify", "--catalog", catalog])
        #expect(verify.status == 0, "\(verify.stderr)")
        // Nothing but the catalog and the inputs is left in the folder (no temporary file).
        let known: Set = ["c.sqlite", "c.sqlite-wal", "c.sqlite-shm", "small.safetensors", "big.safetensors"]
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).filter { !known.contains($0) }.isEmpty)
    }

    @Test func twoConcurrentAddsBothLand() throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = folder + "/c.sqlite"
        var paths: [String] = []
        for i in 0..<2 {
            let path = folder + "/f\(i).safetensors"
            try Self.bigFile(path, megabytes: 48, seed: UInt64(100 + i))
            paths.append(path)
        }
        // Both start on a catalog that does not exist yet: they also race to create it.
        let logs = paths.indices.map { folder + "/add\($0).log" }
        let processes = try paths.enumerated().map { i, path in
            _ = FileManager.default.createFile(atPath: logs[i], contents: nil)
            return try CLI.start(["add", path, "--name", "same", "--tag", "t\(i)", "--catalog", catalog],
                                    stderr: FileHandle(forWritingAtPath: logs[i]))
        }
        for process in processes { process.waitUntilExit() }
        let messages = logs.map { (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "" }
        #expect(processes.map(\.terminationStatus) == [0, 0], "\(messages)")
        let opened = try Catalog.open(at: catalog, create: false)
        let entries = try opened.list()
        #expect(entries.map(\.reference) == [Reference(name: "same", version: 1), Reference(name: "same", version: 2)], "\(messages)")
        #expect(Set(entries.flatMap(\.tags)) == ["t0", "t1"])
        #expect(try opened.verify().isEmpty)
        for entry in entries {
            let out = folder + "/out.safetensors"
            #expect(try CLI.run(["get", entry.reference.description, "-o", out, "--catalog", catalog]).status == 0)
            #expect(SafeTensorsFixture.sha256(file: out) == entry.sha256)
        }
    }
}
