import Foundation
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// Digests taken ahead of an add (a folder import hashes the next file while the current one is added)
/// must be exactly the hashes the add computes itself, and an add must never take another file's.
@Suite struct AddDigestsTests {
    @Test func digestsEqualPlainSHA256OfTheBytes() throws {
        let folder = SafeTensorsFixture.folder()
        for (label, bytes) in try RoundTripTests.samples() {
            let path = folder + "/in.safetensors"
            SafeTensorsFixture.write(bytes, to: path)
            let file = try SafeTensorsFile.open(path)
            let digests = AddDigests(of: file)
            let dataStart = file.header.dataStart
            #expect(digests.whole == SafeTensorsFixture.sha256(bytes), "\(label)")
            #expect(digests.data == "0x" + SafeTensorsFixture.sha256(Array(bytes[dataStart...])), "\(label)")
            #expect(digests.tensors == file.tensors.map { SafeTensorsFixture.sha256(Array(bytes[(dataStart + $0.begin)..<(dataStart + $0.end)])) },
                    "\(label)")
        }
    }

    @Test(arguments: Backend.all) func addWithDigestsStoresWhatAnAddWithoutThem(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        for sub in ["plain", "given"] { try FileManager.default.createDirectory(atPath: folder + "/" + sub, withIntermediateDirectories: true) }
        let plain = try backend.newCatalog(in: folder + "/plain")
        let given = try backend.newCatalog(in: folder + "/given")
        let samples = try RoundTripTests.samples()
        for (k, (label, bytes)) in samples.enumerated() {
            let path = folder + "/\(k).safetensors"
            SafeTensorsFixture.write(bytes, to: path)
            let file = try SafeTensorsFile.open(path)
            let a = try plain.add(file: file, originalPath: path, name: "e", tags: [], note: nil, facts: EntryFacts(), level: nil,
                                  digests: nil, beforeCommit: {})
            let b = try given.add(file: file, originalPath: path, name: "e", tags: [], note: nil, facts: EntryFacts(), level: nil,
                                  digests: AddDigests(of: file), beforeCommit: {})
            guard case let .added(refA, _) = a, case let .added(refB, _) = b else { Issue.record("\(label): not added: \(a), \(b)"); continue }
            let (entryA, entryB) = (try plain.entry(refA), try given.entry(refB))
            #expect(entryB.summary.sha256 == SafeTensorsFixture.sha256(bytes), "\(label)")
            #expect(entryB.summary.sha256 == entryA.summary.sha256 && entryB.summary.dataHash == entryA.summary.dataHash, "\(label)")
            #expect(entryB.tensors.map(\.blob) == entryA.tensors.map(\.blob), "\(label)")
        }
        // The same bytes again, digests given: recognised as stored.
        let path = folder + "/0.safetensors"
        let again = try SafeTensorsFile.open(path)
        let outcome = try given.add(file: again, originalPath: path, name: "other", tags: [], note: nil, facts: EntryFacts(), level: nil,
                                    digests: AddDigests(of: again), beforeCommit: {})
        #expect(outcome == .alreadyStored(Reference(name: "e", version: 1)))
        #expect(try given.verify().isEmpty)
    }

    @Test(arguments: Backend.all) func digestsOfAnotherFileAreIgnored(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        let samples = try RoundTripTests.samples()
        SafeTensorsFixture.write(samples[0].1, to: folder + "/a.safetensors")
        SafeTensorsFixture.write(samples[1].1, to: folder + "/b.safetensors")
        let a = try SafeTensorsFile.open(folder + "/a.safetensors"), b = try SafeTensorsFile.open(folder + "/b.safetensors")
        let outcome = try catalog.add(file: b, originalPath: b.path, name: "b", tags: [], note: nil, facts: EntryFacts(), level: nil,
                                      digests: AddDigests(of: a), beforeCommit: {})
        guard case let .added(ref, _) = outcome else { Issue.record("not added: \(outcome)"); return }
        let entry = try catalog.entry(ref)
        #expect(entry.summary.sha256 == SafeTensorsFixture.sha256(samples[1].1))
        #expect(entry.tensors.count == b.tensors.count)
        #expect(try catalog.verify().isEmpty)
    }
}
