import Foundation
import Testing
import TestSupport
@testable import Catalog

/// Replays the catalog fuzz target's seeds and every input it found crashing (Fuzz/regressions/catalog/),
/// and checks that damaged `blobs` rows end in an error before memory of the size they claim is taken
/// (the same rows reached through `tlkit get`: TLKitCommandsTests' CatalogDamagedStreamTests).
@Suite struct CatalogFuzzRegressionTests {
    static let fuzzFolder = FixtureFolder.repositoryRoot.appendingPathComponent("Fuzz")

    static func files(_ folder: String) -> [URL] {
        let url = fuzzFolder.appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? [])
            .filter { !$0.lastPathComponent.hasPrefix(".") && !$0.hasDirectoryPath }.sorted { $0.path < $1.path }
    }

    @Test func seedsDecode() throws {
        let seeds = Self.files("seeds-catalog")
        #expect(seeds.count == 5)
        for url in seeds {
            let outcome = CatalogProbe.probe(try [UInt8](Data(contentsOf: url)))
            let expected = url.lastPathComponent == "shuffle2.bin" ? 128 : 256
            #expect(outcome == .decoded(byteCount: expected), "\(url.lastPathComponent): \(outcome)")
        }
    }

    @Test func crashingInputsNowFailCleanly() throws {
        for url in Self.files("regressions/catalog") {
            if case let .rejected(message) = CatalogProbe.probe(try [UInt8](Data(contentsOf: url))) { #expect(!message.isEmpty) }
        }
    }

    static func row(codec: UInt8, rawSize: Int64, stored: [UInt8]) -> [UInt8] {
        [codec] + withUnsafeBytes(of: rawSize.littleEndian) { Array($0) } + stored
    }

    /// Raw sizes a damaged row may claim: negative (once a range trap), absurd (once an allocation of
    /// that size before the stored bytes were looked at), or merely wrong.
    @Test(arguments: [Int64(-1), Int64.min, Int64(1) << 62, Int64.max, 255, 257])
    func damagedRawSizesAreRefused(_ rawSize: Int64) throws {
        let zstdSeed = try [UInt8](Data(contentsOf: Self.fuzzFolder.appendingPathComponent("seeds-catalog/zstd.bin")))
        for codec: UInt8 in 0...4 {
            let outcome = CatalogProbe.probe(Self.row(codec: codec, rawSize: rawSize, stored: Array(zstdSeed[9...])))
            guard case let .rejected(message) = outcome else { Issue.record("codec \(codec), raw size \(rawSize): \(outcome)"); continue }
            #expect(message.contains("raw size") || message.contains("expected") || message.contains("cannot hold"), "\(message)")
        }
    }

    @Test func anUnknownCodecAndGarbageFramesAreRefused() {
        #expect(CatalogProbe.probe(Self.row(codec: 5, rawSize: 8, stored: [1, 2, 3])) == .rejected("\(CatalogError.codec("unknown codec 'shuffle0+zstd' (written by a newer tlkit?)"))"))
        guard case .rejected = CatalogProbe.probe(Self.row(codec: 1, rawSize: 8, stored: [0x28, 0xB5, 0x2F, 0xFD, 0xFF])) else {
            Issue.record("a truncated zstd frame decoded"); return
        }
    }
}
