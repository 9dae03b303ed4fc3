import Foundation
import Testing
import TestSupport
@testable import Catalog

@Suite struct ReferenceTests {
    @Test func parsesNamesAndVersions() throws {
        #expect(try Reference.parse("dog") == Reference(name: "dog"))
        #expect(try Reference.parse("dog@3") == Reference(name: "dog", version: 3))
        #expect(try Reference.parse("catalog:dog@2") == Reference(name: "dog", version: 2))
        #expect(try Reference.parse("styles/ink wash@12") == Reference(name: "styles/ink wash", version: 12))
        #expect(try Reference.parse("dog@3").description == "dog@3")
        for bad in ["", "@3", "dog@", "dog@0", "dog@-1", "dog@x", "a@b@2", "-dog", "catalog:"] {
            #expect(throws: CatalogError.self, "\(bad)") { try Reference.parse(bad) }
        }
    }

    @Test func resolvesAdapterArguments() throws {
        let existing: Set<String> = ["dog.safetensors", "dog@2", "cat"]
        let exists = { (path: String) in existing.contains(path) }
        #expect(try AdapterSource.resolve("-", fileExists: exists) == .file("-"))
        #expect(try AdapterSource.resolve("dog.safetensors", fileExists: exists) == .file("dog.safetensors"))
        // An existing path wins over a reference of the same spelling...
        #expect(try AdapterSource.resolve("dog@2", fileExists: exists) == .file("dog@2"))
        #expect(try AdapterSource.resolve("cat", fileExists: exists) == .file("cat"))
        // ...unless catalog: forces the catalog.
        #expect(try AdapterSource.resolve("catalog:cat", fileExists: exists) == .catalog(Reference(name: "cat")))
        #expect(try AdapterSource.resolve("dog@3", fileExists: exists) == .catalog(Reference(name: "dog", version: 3)))
        #expect(try AdapterSource.resolve("bird", fileExists: exists) == .catalog(Reference(name: "bird")))
        #expect(throws: CatalogError.self) { try AdapterSource.resolve("missing@x", fileExists: exists) }
    }

    @Test func resolvesTheCatalogPath() {
        #expect(CatalogLocation.resolve(explicit: "/x/c.sqlite", environment: ["TLKIT_CATALOG": "/y"]) == "/x/c.sqlite")
        #expect(CatalogLocation.resolve(explicit: nil, environment: ["TLKIT_CATALOG": "/y/c.sqlite", "XDG_DATA_HOME": "/d"]) == "/y/c.sqlite")
        #expect(CatalogLocation.resolve(explicit: nil, environment: ["XDG_DATA_HOME": "/d", "HOME": "/h"]) == "/d/tlkit/catalog.sqlite")
        #expect(CatalogLocation.resolve(explicit: nil, environment: ["TLKIT_CATALOG": "", "XDG_DATA_HOME": "", "HOME": "/h"]) == "/h/.local/share/tlkit/catalog.sqlite")
        #expect(CatalogLocation.resolve(explicit: nil, environment: ["XDG_DATA_HOME": "relative", "HOME": "/h"]) == "/h/.local/share/tlkit/catalog.sqlite")
    }

    @Test(arguments: Backend.all) func namesLatestAndExactVersions(backend: Backend) throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = try backend.newCatalog(in: folder)
        for step in 1...3 {
            // A new file per step: rewriting a mapped one would read as "changed while being read" to any
            // other test in this process (MappedInputs watches every mapped input).
            let path = folder + "/s\(step).safetensors"
            SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: step, modules: 1), to: path)
            _ = try catalog.add(file: try .open(path), originalPath: path, name: "run", tags: step == 2 ? ["best"] : [], facts: EntryFacts(method: "ortho"))
        }
        #expect(try catalog.entry(Reference(name: "run")).summary.version == 3)
        #expect(try catalog.entry(Reference(name: "run", version: 2)).summary.tags == ["best"])
        do {
            _ = try catalog.entry(Reference(name: "run", version: 7))
            Issue.record("found a version that does not exist")
        } catch let error as CatalogError {
            #expect(error.isNotFound)
            #expect("\(error)".contains("1, 2, 3"))
        }
        #expect(try catalog.list(filter: ListFilter(tag: "best")).map(\.reference) == [Reference(name: "run", version: 2)])
        #expect(try catalog.list(filter: ListFilter(nameGlob: "r?n")).count == 3)
        #expect(try catalog.list(filter: ListFilter(method: "ortho")).count == 3)
        #expect(try catalog.list(filter: ListFilter(nameGlob: "x*")).isEmpty)
    }
}
