import Foundation
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

@Suite struct RoundTripTests {
    /// Files of every kind the catalog must give back byte for byte.
    static func samples() throws -> [(String, [UInt8])] {
        var r = SplitMix64(seed: 42)
        var out: [(String, [UInt8])] = []
        out.append(("f32", try SafeTensorsFixture.file([("a.weight", .f32, [64, 32], SafeTensorsFixture.floats(r.normal(count: 2048), .f32)),
                                             ("b.alpha", .f32, [], SafeTensorsFixture.floats([8], .f32))],
                                            metadata: ["ss_network_dim": "64", "note": "ünïcode ✓"])))
        out.append(("f16", try SafeTensorsFixture.file([("x.lora_down.weight", .f16, [8, 320], SafeTensorsFixture.floats(r.normal(count: 2560), .f16)),
                                             ("x.lora_up.weight", .f16, [320, 8], SafeTensorsFixture.floats(r.normal(count: 2560), .f16))])))
        out.append(("bf16", try SafeTensorsFixture.file([("w", .bf16, [3, 5, 7], SafeTensorsFixture.floats(r.normal(count: 105), .bf16))])))
        out.append(("u8+empty", try SafeTensorsFixture.file([("bytes", .u8, [1000], r.bytes(1000)), ("empty", .f32, [0, 4], []),
                                                  ("i64", .i64, [3], r.bytes(24)), ("f64", .f64, [100], r.bytes(800))])))
        out.append(("metadata only", try SafeTensorsFixture.file([], metadata: ["k": "v"])))
        out.append(("empty object", SafeTensorsFixture.image(header: "{}", data: [])))
        // Written by another tool: unsorted keys, odd spacing, unaligned data, trailing padding.
        let data = r.bytes(6) + SafeTensorsFixture.floats(r.normal(count: 10), .f32)
        out.append(("foreign", SafeTensorsFixture.image(header: " {\"z\": {\"dtype\":\"U8\",\"shape\":[6],\"data_offsets\":[0,6]}, \"__metadata__\":{\"format\":\"pt\"},\"a\":{\"data_offsets\":[6,46],\"shape\":[10],\"dtype\":\"F32\"}}   ", data: data)))
        // Identical tensors inside one file are stored once.
        let same = SafeTensorsFixture.floats(r.normal(count: 4096), .f32)
        out.append(("duplicate tensors", try SafeTensorsFixture.file([("one", .f32, [4096], same), ("two", .f32, [4096], same)])))
        return out
    }

    @Test(arguments: Backend.all) func everySampleComesBackByteIdentical(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        for (label, bytes) in try Self.samples() {
            let path = folder + "/in.safetensors"
            SafeTensorsFixture.write(bytes, to: path)
            let outcome = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: label)
            guard case let .added(ref, _) = outcome else { Issue.record("\(label): not added: \(outcome)"); continue }
            let out = try AtomicOutput(folder + "/out.safetensors")
            try catalog.write(ref, to: out)
            try out.commit()
            #expect(SafeTensorsFixture.sha256(file: folder + "/out.safetensors") == SafeTensorsFixture.sha256(bytes), "\(label)")
            let summary = try catalog.entry(ref).summary
            #expect(summary.sha256 == SafeTensorsFixture.sha256(bytes))
            #expect(summary.size == bytes.count)
        }
        #expect(try catalog.verify().isEmpty)
        // Adapter arguments that resolve to the catalog load the same bytes in memory.
        let loaded = try catalog.file(Reference(name: "f16"))
        #expect(loaded.path == "catalog:f16@1")
        #expect(Hashing.sha256(loaded.headerBytes) == SafeTensorsFixture.sha256(Array(try Self.samples()[1].1.prefix(loaded.header.dataStart))))
        #expect(Hashing.sha256(loaded.dataSection) == String(try catalog.entry(Reference(name: "f16")).summary.dataHash.dropFirst(2)))
    }

    @Test func fixtureAdaptersComeBackByteIdentical() throws {
        // The repository's fixture adapters.
        let root = FixtureFolder.path("adapters")
        let files = try FileManager.default.subpathsOfDirectory(atPath: root).filter { $0.hasSuffix(".safetensors") }
        #expect(!files.isEmpty)
        let catalog = try Catalog.open(at: SafeTensorsFixture.folder() + "/c.sqlite", create: true)
        let folder = SafeTensorsFixture.folder()
        for (i, file) in files.enumerated() {
            let path = root + "/" + file
            guard case let .added(ref, _) = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "f\(i)") else { continue }
            let out = try AtomicOutput(folder + "/out.safetensors")
            try catalog.write(ref, to: out)
            try out.commit()
            #expect(SafeTensorsFixture.sha256(file: folder + "/out.safetensors") == SafeTensorsFixture.sha256(file: path), "\(file)")
        }
    }

    @Test func codecIsAnExactInverseForEveryWidth() throws {
        var r = SplitMix64(seed: 9)
        for dtype in [DType.f16, .bf16, .f32, .f64, .c64, .u8, .i32, .f8e4m3] {
            for count in [0, 1, 63, 64, 1000, 100_003] {
                let bytes = r.bytes(count * dtype.bitSize / 8)
                let (codec, stored) = try bytes.withUnsafeBytes { try Codec.encode($0, dtype: dtype, level: 3, workers: 0) }
                var back = [UInt8](repeating: 0, count: bytes.count)
                try stored.withUnsafeBytes { s in try back.withUnsafeMutableBytes { try codec.decode(s, into: $0) } }
                #expect(back == bytes, "\(dtype) × \(count) via \(codec.name)")
                #expect(try Codec(name: codec.name) == codec)
            }
        }
    }

    @Test func shuffledFloatsCompressBetterThanPlainZstd() throws {
        var r = SplitMix64(seed: 5)
        let bytes = SafeTensorsFixture.floats(r.normal(count: 1 << 18), .f32)
        let shuffled = try bytes.withUnsafeBytes { try Codec.encode($0, dtype: .f32, level: 3, workers: 0) }
        let plain = try bytes.withUnsafeBytes { try Codec.encode($0, dtype: .u32, level: 3, workers: 0) }
        print("float32 normal: shuffled+zstd \(shuffled.1.count), zstd \(plain.1.count), raw \(bytes.count)")
        #expect(shuffled.0 == .shuffleZstd(width: 4))
        #expect(Double(shuffled.1.count) < 0.97 * Double(plain.1.count))
    }

    @Test func largeTensorsUseSeveralThreadsAndStillRoundTrip() throws {
        var r = SplitMix64(seed: 11)
        let bytes = SafeTensorsFixture.floats(r.normal(count: 17 << 19), .f16)  // 8.5 MB byte planes, above the threshold
        #expect(Codec.usesThreads(byteCount: bytes.count, dtype: .f16))
        let (codec, stored) = try bytes.withUnsafeBytes { try Codec.encode($0, dtype: .f16, level: 3, workers: 2) }
        var back = [UInt8](repeating: 0, count: bytes.count)
        try stored.withUnsafeBytes { s in try back.withUnsafeMutableBytes { try codec.decode(s, into: $0) } }
        #expect(back == bytes)
    }
}
