import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// Copies between catalogs (`push`/`pull`) in every direction the backends allow: SQLite to SQLite
/// always, to and from PostgreSQL when the test server is there.
@Suite struct TransferTests {
    /// A source and a destination backend.
    struct Pair: Sendable, CustomTestStringConvertible {
        let from: Backend, to: Backend
        var testDescription: String { "\(from.rawValue) to \(to.rawValue)" }
        static var all: [Pair] { Backend.all.flatMap { from in Backend.all.map { Pair(from: from, to: $0) } } }
    }

    /// Two checkpoints of a run (versions 1 and 2 of `run`, tagged, with facts and a note) and a LoRA.
    static func source(_ backend: Backend, in folder: String) throws -> (any CatalogStore, [String: String]) {
        let catalog = try backend.newCatalog(in: folder)
        var files: [String: String] = [:]
        for step in 1...2 {
            let path = folder + "/step\(step).safetensors"
            SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: step), to: path)
            _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "run", tags: ["step\(step)", "run"], note: "note \(step)",
                                facts: EntryFacts(kind: "t-lora", base: "sdxl", method: "tlora", rank: 16, minRank: 8, steps: step * 100),
                                level: nil, digests: nil, beforeCommit: {})
            files["run@\(step)"] = path
        }
        var r = SplitMix64(seed: 9)
        let lora = folder + "/lora.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.file([("x.lora_down.weight", .f16, [8, 320], SafeTensorsFixture.floats(r.normal(count: 2560), .f16))]), to: lora)
        _ = try catalog.add(file: try SafeTensorsFile.open(lora), originalPath: lora, name: "style")
        files["style@1"] = lora
        return (catalog, files)
    }

    /// `get` of `reference` from `catalog` hashes as `file` does.
    static func expectSameBytes(_ catalog: any CatalogStore, _ reference: Reference, as file: String, in folder: String) throws {
        let out = try AtomicOutput(folder + "/out.safetensors")
        try catalog.write(reference, to: out)
        try out.commit()
        #expect(SafeTensorsFixture.sha256(file: folder + "/out.safetensors") == SafeTensorsFixture.sha256(file: file), "\(reference)")
    }

    @Test(arguments: Pair.all) func copiesKeepVersionsMetadataTagsAndBytes(pair: Pair) throws {
        let folder = SafeTensorsFixture.folder()
        let (source, files) = try Self.source(pair.from, in: folder)
        let destination = try pair.to.newCatalog(in: folder + "/to")
        let result = try CatalogTransfer.copy([Reference(name: "run"), Reference(name: "style", version: 1)], allVersions: true, from: source, to: destination)
        #expect(result.items.map(\.reference.description) == ["run@1", "run@2", "style@1"])
        #expect(result.items.allSatisfy { $0.status == .copied })
        // Every distinct tensor went once: as many as the source stores.
        #expect(result.tensorsSent == (try source.totals().blobs))
        #expect(result.storedBytesSent > 0 && result.tensorsPresent == 0)

        let copied = try destination.list(), original = try source.list()
        #expect(copied.map(\.reference) == original.map(\.reference))
        for (a, b) in zip(copied, original) {
            #expect(a.facts == b.facts && a.note == b.note && a.tags == b.tags && a.sha256 == b.sha256 && a.dataHash == b.dataHash)
            #expect(a.size == b.size && a.stored == b.stored && a.tensorCount == b.tensorCount && a.source == b.source && a.addedAt == b.addedAt)
        }
        for (ref, file) in files { try Self.expectSameBytes(destination, try Reference.parse(ref), as: file, in: folder) }
        #expect(try destination.verify().isEmpty)
        #expect(try destination.totals().storedBytes == (try source.totals().storedBytes))

        // A second copy finds everything there and sends no tensor.
        let again = try CatalogTransfer.copy([Reference(name: "run"), Reference(name: "style")], allVersions: true, from: source, to: destination)
        #expect(again.items.allSatisfy { $0.status == .present })
        #expect(again.tensorsSent == 0 && again.storedBytesSent == 0)
    }

    @Test(arguments: Pair.all) func onlyTheMissingTensorsAreSent(pair: Pair) throws {
        let folder = SafeTensorsFixture.folder()
        let (source, files) = try Self.source(pair.from, in: folder)
        let destination = try pair.to.newCatalog(in: folder + "/to")
        // The destination has the first checkpoint, under another name, and a tag on it.
        let first = files["run@1"]!
        _ = try destination.add(file: try SafeTensorsFile.open(first), originalPath: first, name: "elsewhere")
        let before = try destination.totals()
        let result = try CatalogTransfer.copy([Reference(name: "run", version: 2)], allVersions: false, from: source, to: destination)
        // Checkpoint 2 changes only q and p of each module: those are all that travel.
        let changed = try SafeTensorsFile.open(files["run@2"]!).tensors.filter { $0.name.hasSuffix(".q") || $0.name.hasSuffix(".p") }
        #expect(result.tensorsSent == changed.count)
        #expect(result.tensorsPresent > 0)
        #expect(try destination.totals().blobs == before.blobs + changed.count)
        try Self.expectSameBytes(destination, Reference(name: "run", version: 2), as: files["run@2"]!, in: folder)
        #expect(try destination.latestVersion(of: "run") == 2)  // its own version number, version 1 absent
        #expect(try destination.verify().isEmpty)
    }

    @Test(arguments: Pair.all) func aVersionHeldWithOtherBytesIsAConflictAndNothingIsCopied(pair: Pair) throws {
        let folder = SafeTensorsFixture.folder()
        let (source, files) = try Self.source(pair.from, in: folder)
        let destination = try pair.to.newCatalog(in: folder + "/to")
        // run@1 there is the source's run@2.
        let second = files["run@2"]!
        _ = try destination.add(file: try SafeTensorsFile.open(second), originalPath: second, name: "run")
        let before = try destination.totals()
        let error = #expect(throws: CatalogError.self) {
            try CatalogTransfer.copy([Reference(name: "style"), Reference(name: "run", version: 1)], allVersions: false, from: source, to: destination)
        }
        guard case let .conflict(message)? = error else { Issue.record("not a conflict: \(String(describing: error))"); return }
        #expect(message.contains("run@1") && message.contains("other bytes"))
        #expect(try destination.list().map(\.reference.description) == ["run@1"])
        #expect(try destination.totals() == before)
        // An entry present with the same bytes only gains the tags it lacks.
        _ = try destination.untag(Reference(name: "run", version: 1), ["run"])
        _ = try destination.tag(Reference(name: "run", version: 1), ["mine"])
        let samePlace = try pair.from.newCatalog(in: folder + "/same")
        _ = try samePlace.add(file: try SafeTensorsFile.open(second), originalPath: second, name: "run", tags: ["run", "mine"])
        let result = try CatalogTransfer.copy([Reference(name: "run")], allVersions: false, from: samePlace, to: destination)
        #expect(result.items.first?.status == .present && result.items.first?.tagsAdded == ["run"])
        #expect(try destination.entry(Reference(name: "run")).summary.tags == ["mine", "run"])
    }

    @Test(arguments: Backend.all) func aDamagedSourceTensorStopsTheCopyAndTheDestinationKeepsNothing(to backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let (source, files) = try Self.source(.sqlite, in: folder)
        let destination = try backend.newCatalog(in: folder + "/to")
        // Damage the LoRA's one tensor: the run's tensors (sent first when they sort first, or not) are
        // in the same transaction and must not stay.
        let hash = try (source as! Catalog).entry(Reference(name: "style")).tensors[0].blob
        try DatabaseQueue(path: (source as! Catalog).path).write { db in
            try db.execute(sql: "UPDATE blobs SET data = zeroblob(length(data)) WHERE sha256 = ?", arguments: [hash])
        }
        #expect(throws: CatalogError.self) {
            try CatalogTransfer.copy([Reference(name: "run"), Reference(name: "style")], allVersions: true, from: source, to: destination)
        }
        #expect(try destination.list().isEmpty)
        #expect(try destination.totals().blobs == 0)
        _ = files
    }

    @Test func theSameCatalogIsRefused() throws {
        let folder = SafeTensorsFixture.folder()
        let (source, _) = try Self.source(.sqlite, in: folder)
        let again = try Catalog.open(at: folder + "/./c.sqlite", create: false)
        #expect(throws: CatalogError.self) { try CatalogTransfer.copy([Reference(name: "run")], allVersions: false, from: source, to: again) }
    }
}
