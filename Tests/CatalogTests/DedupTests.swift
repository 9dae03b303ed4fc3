import Foundation
import GRDB
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

@Suite struct DedupTests {
    /// Stored bytes of all blobs plus headers, straight from the database.
    static func storedBytes(_ catalog: any CatalogStore) throws -> Int { try catalog.totals().storedBytes }

    @Test(arguments: Backend.all) func secondCheckpointStoresOnlyTheChangedTensors(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        let first = folder + "/step1.safetensors", second = folder + "/step2.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 1), to: first)
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 2), to: second)

        _ = try catalog.add(file: try SafeTensorsFile.open(first), originalPath: first, name: "run")
        let afterFirst = try Self.storedBytes(catalog)
        let outcome = try catalog.add(file: try SafeTensorsFile.open(second), originalPath: second, name: "run")
        let growth = try Self.storedBytes(catalog) - afterFirst

        guard case let .added(ref, stats) = outcome else { Issue.record("second checkpoint not added"); return }
        #expect(ref == Reference(name: "run", version: 2))
        // Per module: q0, p0, lambda0 frozen; lambda unchanged too (equal to lambda0's bytes → same blob).
        // Only q and p changed: 2 of 6 tensors per module, which compress to about their raw size.
        let file = try SafeTensorsFile.open(second)
        let changed = file.tensors.filter { $0.name.hasSuffix(".q") || $0.name.hasSuffix(".p") }
        let changedRaw = changed.reduce(0) { $0 + $1.byteCount }
        print("checkpoint 2: file \(file.header.fileLength) B, changed tensors \(changedRaw) B raw, catalog grew \(growth) B")
        #expect(stats.newBlobs == changed.count)
        #expect(growth <= changedRaw + file.header.length + 8)
        #expect(growth >= changedRaw / 2)  // the changed tensors really were stored
        #expect(growth < file.header.fileLength / 2)
    }

    @Test(arguments: Backend.all) func identicalReaddAddsNothing(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        let path = folder + "/a.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 3, modules: 2), to: path)
        _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "a", tags: ["x"])
        let before = try catalog.totals()
        let again = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "other")
        #expect(again == .alreadyStored(Reference(name: "a", version: 1)))
        let after = try catalog.totals()
        #expect(after.entries == before.entries && after.blobs == before.blobs && after.storedBytes == before.storedBytes)
    }

    @Test(arguments: Backend.all) func removedVersionsKeepSharedTensorsAndGCFreesTheRest(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        for step in 1...3 {
            let path = folder + "/s\(step).safetensors"
            SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: step, modules: 3), to: path)
            _ = try catalog.add(file: try SafeTensorsFile.open(path), originalPath: path, name: "run")
        }
        #expect(try catalog.remove(Reference(name: "run", version: 2)) == [Reference(name: "run", version: 2)])
        let stats = try catalog.gc()
        #expect(stats.blobsRemoved == 6)  // q and p of 3 modules, used only by version 2
        #expect(try catalog.verify().isEmpty)
        for version in [1, 3] {
            let out = try AtomicOutput(folder + "/out.safetensors")
            try catalog.write(Reference(name: "run", version: version), to: out)
            try out.commit()
            #expect(SafeTensorsFixture.sha256(file: folder + "/out.safetensors") == SafeTensorsFixture.sha256(file: folder + "/s\(version).safetensors"))
        }
        #expect(try catalog.remove(Reference(name: "run"), allVersions: true).count == 2)
        _ = try catalog.gc()
        #expect(try catalog.totals().blobs == 0)
        #expect(throws: CatalogError.self) { try catalog.entry(Reference(name: "run")) }
    }
}
