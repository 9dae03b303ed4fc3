import Foundation
import Testing
import TestSupport
@testable import Adapters

/// Replays the fuzzer's seeds and every input it ever found crashing (Fuzz/regressions/).
struct FuzzRegressionTests {
    static let fuzzFolder = FixtureFolder.repositoryRoot.appendingPathComponent("Fuzz")

    static func files(_ folder: String) -> [URL] {
        let url = fuzzFolder.appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? [])
            .filter { !$0.lastPathComponent.hasPrefix(".") && !$0.hasDirectoryPath }.sorted { $0.path < $1.path }
    }

    @Test func seedsAreIdentified() throws {
        let expected: [String: FormatProbe.Outcome] = [
            "kohya.safetensors": .identified(kind: "lora", format: "kohya"),
            "peft.safetensors": .identified(kind: "lora", format: "peft"),
            "official.safetensors": .identified(kind: "tlora", format: "tlora-official"),
            "tlkit.safetensors": .identified(kind: "tlora", format: "tlkit"),
            "unet.safetensors": .identified(kind: "checkpoint", format: "diffusers"),
            "sgm.safetensors": .identified(kind: "checkpoint", format: "sgm"),
        ]
        let seeds = Self.files("seeds")
        #expect(seeds.count == expected.count)
        for url in seeds {
            let outcome = FormatProbe.probe(try [UInt8](Data(contentsOf: url)))
            #expect(outcome == expected[url.lastPathComponent], "\(url.lastPathComponent): \(outcome)")
        }
    }

    @Test func crashingInputsNowFailCleanly() throws {
        for url in Self.files("regressions") {
            // Reaching the next line at all is the point: these inputs once crashed or hung the reader.
            let outcome = FormatProbe.probe(try [UInt8](Data(contentsOf: url)))
            if case let .rejected(message) = outcome { #expect(!message.isEmpty) }
        }
    }

    @Test func adapterSeedsAreRead() throws {
        let expected: [String: AdapterProbe.Outcome] = [
            "kohya.safetensors": .read(format: "kohya", modules: 0),
            "peft.safetensors": .read(format: "peft", modules: 0),
            "tlkit.safetensors": .read(format: "tlkit", modules: 0),
            "official-hparams.bin": .read(format: "tlora-official", modules: 0),
        ]
        let seeds = Self.files("seeds-adapters")
        #expect(seeds.count == 5)
        for url in seeds {
            let outcome = AdapterProbe.probe(try [UInt8](Data(contentsOf: url)))
            if url.lastPathComponent == "official.safetensors" {
                // Without its hparams.yml the official layout needs --min-rank: a clear refusal.
                guard case let .rejected(message) = outcome else { Issue.record("\(outcome)"); continue }
                #expect(message.contains("--min-rank"), "\(message)")
                continue
            }
            guard case let .read(format, modules) = outcome, case let .read(expectedFormat, _) = expected[url.lastPathComponent] else {
                Issue.record("\(url.lastPathComponent): \(outcome)"); continue
            }
            #expect(format == expectedFormat && modules > 0, "\(url.lastPathComponent): \(outcome)")
        }
    }

    @Test func adapterCrashingInputsNowFailCleanly() throws {
        for url in Self.files("regressions/adapters") {
            if case let .rejected(message) = AdapterProbe.probe(try [UInt8](Data(contentsOf: url))) { #expect(!message.isEmpty) }
        }
    }
}
