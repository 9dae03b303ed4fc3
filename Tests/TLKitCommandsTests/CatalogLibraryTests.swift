import Foundation
import SafeTensors
import Testing
import TestSupport

/// The catalog as a curator's library, through the tlkit binary, on both backends: `add --recursive`
/// with its import cache, `list --search` and its filters, `dups`, and the site hashes.
@Suite struct CatalogLibraryTests {
    /// A new, empty catalog location of `backend`.
    static func newCatalog(_ backend: LibraryBackend, in folder: URL) throws -> String {
        switch backend {
        case .sqlite: return folder.appendingPathComponent("c.sqlite").path
        case .postgres: return try PostgresCatalogTests.newDatabase()
        }
    }

    static func copy(_ fixture: String, to path: URL) throws {
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CLI.fixture(fixture), toPath: path.path)
    }

    /// The data section of a safetensors file, found from its length prefix here (not by tlkit).
    static func dataSection(_ path: String) throws -> Data {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return bytes.dropFirst(8 + n)
    }

    /// A kohya LoRA with training captions, a trigger phrase and kohya's own hash of its data.
    static func captionedLoRA(at path: URL) throws {
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        var r = SplitMix64(seed: 11)
        let tensors: [(String, DType, [Int], [UInt8])] = [
            ("lora_unet_x.lora_down.weight", .f32, [4, 32], SafeTensorsFixture.floats(r.normal(count: 128), .f32)),
            ("lora_unet_x.lora_up.weight", .f32, [32, 4], SafeTensorsFixture.floats(r.normal(count: 128), .f32)),
        ]
        let data = try SafeTensorsFixture.file(tensors)
        let plain = path.deletingLastPathComponent().appendingPathComponent(".plain")
        SafeTensorsFixture.write(data, to: plain.path)
        let sshs = SafeTensorsFixture.sha256(try dataSection(plain.path))
        try FileManager.default.removeItem(at: plain)
        let metadata = [
            "ss_base_model_version": "sdxl_base_v1-0",
            "modelspec.trigger_phrase": "wtrcolor style",
            "ss_tag_frequency": #"{"10_sks dog": {"sks dog": 5, "grass": 2}}"#,
            "ss_dataset_dirs": #"{"10_sks dog": {"n_repeats": 10, "img_count": 5}}"#,
            "sshs_model_hash": sshs,
        ]
        SafeTensorsFixture.write(try SafeTensorsFixture.file(tensors, metadata: metadata), to: path.path)
    }

    /// A tree of adapters as curators keep them: nested folders, one name in two folders, an exact
    /// copy, a damaged file, files that are not adapters' and hidden ones.
    static func tree() throws -> URL {
        let root = CLI.temporaryFolder().appendingPathComponent("loras")
        try copy("adapters/bases/sdxl-base.safetensors", to: root.appendingPathComponent("sdxl/base/style.safetensors"))
        try copy("adapters/bases/sdxl-pony.safetensors", to: root.appendingPathComponent("sdxl/pony/pony.safetensors"))
        try copy("adapters/bases/sdxl-base.safetensors", to: root.appendingPathComponent("dup/style.safetensors"))
        try copy("adapters/bases/sd1-kohya.safetensors", to: root.appendingPathComponent("sd15/lora.safetensors"))
        try copy("adapters/lycoris/loha.safetensors", to: root.appendingPathComponent("lyco/loha.safetensors"))
        try copy("adapters/kohya/kohya_from_peft.safetensors", to: root.appendingPathComponent("other/style.safetensors"))
        try captionedLoRA(at: root.appendingPathComponent("tagged/dog.safetensors"))
        try Data("not a safetensors file at all".utf8).write(to: root.appendingPathComponent("garbage.safetensors"))
        try Data("notes".utf8).write(to: root.appendingPathComponent("notes.txt"))
        try copy("adapters/bases/sd2-kohya.safetensors", to: root.appendingPathComponent(".hidden.safetensors"))
        return root
    }

    static func entries(_ catalog: String, _ extra: [String] = []) throws -> [[String: Any]] {
        let list = try CLI.run(["list", "--json", "--catalog", catalog] + extra)
        #expect(list.status == 0, "\(list.stderr)")
        return list.stdoutLines.map(CLI.json)
    }

    static func summary(_ result: CLI.Result) -> String {
        result.stderr.split(separator: "\n").last.map(String.init) ?? ""
    }

    @Test(arguments: LibraryBackend.all) func recursiveImportSkipsUnchangedFilesAndVersionsChangedOnes(backend: LibraryBackend) throws {
        let root = try Self.tree()
        let catalog = try Self.newCatalog(backend, in: root.deletingLastPathComponent())
        let first = try CLI.run(["add", "-r", root.path, "--catalog", catalog])
        #expect(first.status == 1, "a refused file makes the exit status 1: \(first.stderr)")
        #expect(Self.summary(first) == "imported 8 files: 6 added, 1 identical to stored entries, 0 unchanged, 1 refused", "\(first.stderr)")
        #expect(first.stderr.contains("refused: \(root.path)/garbage.safetensors: "))
        #expect(!first.stderr.contains("importing "), "no progress line when standard error is not a terminal")
        #expect(Set(first.stdoutLines) == ["style@1", "loha@1", "other/style@1", "lora@1", "pony@1", "dog@1"])

        let listed = Dictionary(uniqueKeysWithValues: try Self.entries(catalog).map { ($0["ref"] as! String, $0) })
        #expect(listed["pony@1"]?["tags"] as? [String] == ["pony", "sdxl"])
        #expect(listed["pony@1"]?["derivative"] as? String == "pony")
        #expect(listed["loha@1"]?["family"] as? String == "loha")
        #expect(listed["style@1"]?["tags"] as? [String] == ["dup"])
        #expect(listed["dog@1"]?["trigger_words"] as? [String] == ["wtrcolor style", "sks dog"])
        #expect(listed["dog@1"]?["source"] as? String == root.path + "/tagged/dog.safetensors")

        // Nothing changed: every file is skipped unread; the damaged one is refused again.
        let second = try CLI.run(["add", "--recursive", root.path, "--catalog", catalog])
        #expect(second.status == 1)
        #expect(Self.summary(second) == "imported 8 files: 0 added, 0 identical to stored entries, 7 unchanged, 1 refused", "\(second.stderr)")
        #expect(second.stdout.isEmpty)

        // A changed file becomes the next version of its name; a touched one is read again and found identical.
        let changed = root.appendingPathComponent("other/style.safetensors")
        try FileManager.default.removeItem(at: changed)
        try Self.copy("adapters/bases/sd2-kohya.safetensors", to: changed)
        let touched = root.appendingPathComponent("sdxl/pony/pony.safetensors").path
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: touched)
        try FileManager.default.removeItem(at: root.appendingPathComponent("garbage.safetensors"))
        let third = try CLI.run(["add", "-r", root.path, "--catalog", catalog])
        #expect(third.status == 0, "\(third.stderr)")
        #expect(third.stdout == "other/style@2\n")
        #expect(Self.summary(third) == "imported 7 files: 1 added, 1 identical to stored entries, 5 unchanged, 0 refused", "\(third.stderr)")
        let fourth = try CLI.run(["add", "-r", root.path, "--catalog", catalog])
        #expect(fourth.status == 0 && Self.summary(fourth) == "imported 7 files: 0 added, 0 identical to stored entries, 7 unchanged, 0 refused", "\(fourth.stderr)")

        // Removing an entry removes its cache rows: its file is imported again.
        #expect(try CLI.run(["rm", "lora", "--catalog", catalog]).status == 0)
        let fifth = try CLI.run(["add", "-r", root.path, "--catalog", catalog])
        #expect(fifth.status == 0 && fifth.stdout == "lora@1\n", "\(fifth.stdout) \(fifth.stderr)")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func recursiveImportShowsProgressOnATerminal() throws {
        let root = try Self.tree()
        let catalog = root.deletingLastPathComponent().appendingPathComponent("c.sqlite").path
        // script(1) runs the command on a pseudo-terminal.
        let result = try CLI.shell("script -qec \"$TLKIT add -r '\(root.path)' --catalog '\(catalog)'\" /dev/null")
        #expect(result.stdout.contains("importing 8/8: 6 added, 0 unchanged, 1 refused"), "\(result.stdout)")
    }

    @Test func recursiveRefusesNameAndStandardInput() throws {
        #expect(try CLI.run(["add", "-r", "x", "--name", "y", "--catalog", "/nonexistent/c.sqlite"]).status == 2)
        #expect(try CLI.run(["add", "-r", "-", "--catalog", "/nonexistent/c.sqlite"]).status == 2)
        let file = CLI.fixture("adapters/bases/sdxl-base.safetensors")
        let folder = CLI.temporaryFolder().path
        #expect(try CLI.run(["add", "-r", file, "--catalog", folder + "/c.sqlite"]).status == 2)
    }

    @Test(arguments: LibraryBackend.all) func searchAndFiltersFindByNameTagTriggerTrainingTagBaseAndFamily(backend: LibraryBackend) throws {
        let root = try Self.tree()
        let catalog = try Self.newCatalog(backend, in: root.deletingLastPathComponent())
        _ = try CLI.run(["add", "-r", root.path, "--catalog", catalog])
        func refs(_ arguments: [String]) throws -> Set<String> { Set(try Self.entries(catalog, arguments).compactMap { $0["ref"] as? String }) }
        #expect(try refs(["--search", "SKS"]) == ["dog@1"])            // trigger word, any case
        #expect(try refs(["--search", "grass"]) == ["dog@1"])          // a training tag only
        #expect(try refs(["--search", "WtrColor"]) == ["dog@1"])       // the trigger phrase
        #expect(try refs(["--search", "lyco"]) == ["loha@1"])          // a folder tag
        #expect(try refs(["--search", "loha"]) == ["loha@1"])          // name and family
        #expect(try refs(["--search", "pony"]) == ["pony@1"])          // name, tag and derivative
        #expect(try refs(["--search", "sd1"]) == ["lora@1"])           // base
        #expect(try refs(["--search", "no such thing"]).isEmpty)
        #expect(try refs(["--base", "pony"]) == ["pony@1"])
        #expect(try refs(["--family", "loha"]) == ["loha@1"])
        let styles = try refs(["--base", "sdxl", "--search", "STYLE"])
        #expect(styles.contains("style@1") && !styles.contains("pony@1") && !styles.contains("loha@1"), "\(styles)")
        let table = try CLI.run(["list", "--search", "sks", "--catalog", catalog])
        #expect(table.status == 0 && table.stdout.contains("dog@1") && !table.stdout.contains("pony@1"))
    }

    @Test(arguments: LibraryBackend.all) func dupsFindsCopiesSharedTensorsAndNearDuplicatesButNotUnrelatedAdapters(backend: LibraryBackend) throws {
        let folder = CLI.temporaryFolder()
        let catalog = try Self.newCatalog(backend, in: folder)
        let base = CLI.fixture("adapters/bases/sdxl-base.safetensors")
        let file = try SafeTensorsFile.open(base)
        // The same adapter with ΔW scaled by 1.0001 (every lora_up), and one of the same modules with other values.
        var scaled: [(String, DType, [Int], [UInt8])] = [], unrelated: [(String, DType, [Int], [UInt8])] = []
        var r = SplitMix64(seed: 5)
        for info in file.header.tensors {
            let raw = Array(file.rawBytes(info))
            guard info.dtype == .f32 else {
                scaled.append((info.name, info.dtype, info.shape, raw)); unrelated.append((info.name, info.dtype, info.shape, raw)); continue
            }
            let values = raw.withUnsafeBytes { FloatConversion.toFloat32($0, dtype: .f32, count: info.elementCount) }
            let factor: Float = info.name.hasSuffix("lora_up.weight") ? 1.0001 : 1
            scaled.append((info.name, .f32, info.shape, SafeTensorsFixture.floats(values.map { $0 * factor }, .f32)))
            unrelated.append((info.name, .f32, info.shape, SafeTensorsFixture.floats(r.normal(count: info.elementCount), .f32)))
        }
        let metadata = file.metadata
        SafeTensorsFixture.write(try SafeTensorsFixture.file(scaled, metadata: metadata), to: folder.path + "/scaled.safetensors")
        SafeTensorsFixture.write(try SafeTensorsFixture.file(unrelated, metadata: metadata), to: folder.path + "/unrelated.safetensors")
        for (name, path) in [("base", base), ("pony", CLI.fixture("adapters/bases/sdxl-pony.safetensors")),
                             ("scaled", folder.path + "/scaled.safetensors"), ("unrelated", folder.path + "/unrelated.safetensors")] {
            let add = try CLI.run(["add", path, "--name", name, "--catalog", catalog])
            #expect(add.status == 0, "\(add.stderr)")
        }
        // An exact copy under another name arrives from another catalog.
        let other = folder.path + "/other.sqlite"
        #expect(try CLI.run(["add", base, "--name", "copy", "--catalog", other]).status == 0)
        #expect(try CLI.run(["pull", "copy", "--from", other, "--catalog", catalog]).status == 0)

        let dups = try CLI.run(["dups", "--json", "--catalog", catalog])
        #expect(dups.status == 0, "\(dups.stderr)")
        let report = CLI.json(dups.stdout)
        let identical = (report["identical_files"] as? [[String: Any]] ?? []).map { $0["refs"] as? [String] ?? [] }
        #expect(identical == [["base@1", "copy@1"]])
        let sameData = (report["identical_data"] as? [[String: Any]] ?? []).map { Set($0["refs"] as? [String] ?? []) }
        #expect(sameData == [["base@1", "copy@1", "pony@1"]])
        let sharing = (report["shared_tensors"] as? [[String: Any]] ?? [])
        let trio = sharing.first { Set($0["refs"] as? [String] ?? []) == ["base@1", "copy@1", "pony@1"] }
        #expect((trio?["tensors"] as? Int ?? 0) > 0 && (trio?["bytes_saved"] as? Int ?? 0) > 0, "\(sharing)")
        let near = (report["near_duplicates"] as? [[String: Any]] ?? [])
        let pairs = Set(near.map { [$0["a"] as? String ?? "", $0["b"] as? String ?? ""].joined(separator: " ") })
        #expect(pairs == ["base@1 scaled@1", "copy@1 scaled@1", "pony@1 scaled@1"], "\(near)")
        for pair in near { #expect((pair["cosine"] as? Double ?? 0) > 0.9999) }
        #expect(report["compared"] as? Int == 5)

        // The table names the same findings.
        let table = try CLI.run(["dups", "--catalog", catalog])
        let nearRows = table.stdout.split(separator: "\n").filter { $0.hasPrefix("near-duplicate") }
        #expect(table.status == 0 && nearRows.count == 3 && table.stdout.contains("identical-file"), "\(table.stdout)")
        #expect(!nearRows.contains { $0.contains("unrelated") })
    }

    @Test(arguments: LibraryBackend.all) func siteHashesMatchAnIndependentComputation(backend: LibraryBackend) throws {
        let folder = CLI.temporaryFolder()
        let catalog = try Self.newCatalog(backend, in: folder)
        let path = folder.appendingPathComponent("dog.safetensors")
        try Self.captionedLoRA(at: path)
        #expect(try CLI.run(["add", path.path, "--catalog", catalog]).status == 0)
        // sha256sum over the byte range after the header, found by the shell.
        let shell = try CLI.shell("""
            n=$(od -An -t u8 -N 8 '\(path.path)' | tr -d ' '); tail -c +$((9 + n)) '\(path.path)' | sha256sum | cut -d' ' -f1; sha256sum '\(path.path)' | cut -d' ' -f1
            """)
        let sums = shell.stdoutLines
        #expect(sums.count == 2, "\(shell.stderr)")
        let autoV3 = sums.first ?? "", whole = sums.last ?? ""
        #expect(autoV3 == SafeTensorsFixture.sha256(try Self.dataSection(path.path)))
        let metadata = try SafeTensorsFile.open(path.path).metadata
        for json in [CLI.json(try CLI.run(["show", "dog", "--json", "--catalog", catalog]).stdout), try Self.entries(catalog).first ?? [:]] {
            #expect(json["autov2"] as? String == String(whole.prefix(10)))
            #expect(json["autov3"] as? String == autoV3)
            #expect(json["sshs_model_hash"] as? String == metadata["sshs_model_hash"])
            #expect(json["sshs_model_hash"] as? String == autoV3)
        }
        let show = try CLI.run(["show", "dog", "--catalog", catalog])
        #expect(show.stdout.contains("AutoV3      \(autoV3.prefix(12).uppercased()) "), "\(show.stdout)")
        #expect(show.stdout.contains("sshs hash   \(autoV3) (matches the data)"))
    }
}

/// The backends of the command tests: SQLite always; PostgreSQL on the test server (`TestServer`).
enum LibraryBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static var all: [LibraryBackend] { TestServer.enabled ? [.sqlite, .postgres] : [.sqlite] }

    var testDescription: String { rawValue }
}
