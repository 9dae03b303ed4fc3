import Foundation
import Testing
@testable import Catalog
import SafeTensors

/// The subcommands as users run them: output streams, JSON lines and exit codes.
@Suite struct CommandTests {
    @Test func addListShowGetRmTagVerifyGc() throws {
        let folder = Fixture.folder()
        let catalog = folder + "/c.sqlite"
        let path = folder + "/dog_lora.safetensors"
        var r = Random(seed: 3)
        Fixture.write(try Fixture.file([("lora_unet_x.lora_down.weight", .f16, [8, 64], Fixture.floats(r.normal(count: 512), .f16)),
                                        ("lora_unet_x.lora_up.weight", .f16, [64, 8], Fixture.floats(r.normal(count: 512), .f16))],
                                       metadata: ["ss_base_model_version": "sdxl_base_v1-0", "modelspec.trigger_phrase": "sks dog"]), to: path)
        let add = try Helper.run(["add", path, "--tag", "dogs", "--note", "first", "--catalog", catalog])
        #expect(add.status == 0, "\(add.err)")
        #expect(add.out == "dog_lora@1\n")
        let again = try Helper.run(["add", path, "--catalog", catalog])
        #expect(again.status == 0 && again.out == "dog_lora@1\n" && again.err.contains("identical bytes already stored as dog_lora@1"))

        let list = try Helper.run(["list", "--json", "--catalog", catalog])
        #expect(list.status == 0)
        let lines = list.out.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        for key in ["ref", "name", "version", "kind", "format", "base", "method", "rank", "tags", "size", "stored", "sha256", "added"] {
            #expect(object.keys.contains(key), "list --json lacks \(key)")
        }
        #expect(object["ref"] as? String == "dog_lora@1")
        #expect(object["rank"] as? Int == 8)
        #expect(object["format"] as? String == "kohya")
        #expect(object["base"] as? String == "sdxl")
        #expect(object["tags"] as? [String] == ["dogs"])
        #expect(object["sha256"] as? String == Fixture.sha256(file: path))
        #expect(try Helper.run(["list", "--json", "--base", "sd_v1", "--catalog", catalog]).out.isEmpty)

        let show = try Helper.run(["show", "dog_lora", "--catalog", catalog])
        let sha = Fixture.sha256(file: path)
        #expect(show.status == 0)
        #expect(show.out.contains("AutoV2      \(sha.prefix(10))"))
        let file = try SafeTensorsFile.open(path)
        let addnet = Hashing.sha256(file.dataSection)
        #expect(show.out.contains("addnet      \(addnet)"))
        #expect(show.out.contains("modelspec.trigger_phrase = sks dog"))
        let showJSON = try Helper.run(["show", "dog_lora@1", "--json", "--catalog", catalog])
        let detail = try JSONSerialization.jsonObject(with: Data(showJSON.out.utf8)) as! [String: Any]
        #expect(detail["autov2"] as? String == String(sha.prefix(10)))
        #expect(detail["hash_sha256"] as? String == "0x" + addnet)

        let out = folder + "/back.safetensors"
        #expect(try Helper.run(["get", "dog_lora", "-o", out, "--catalog", catalog]).status == 0)
        #expect(Fixture.sha256(file: out) == sha)
        let stdout = try Helper.run(["get", "dog_lora@1", "-o", "-", "--catalog", catalog])
        #expect(stdout.status == 0 && Fixture.sha256(stdout.bytes) == sha)

        #expect(try Helper.run(["tag", "dog_lora", "best", "sdxl", "--catalog", catalog]).status == 0)
        #expect(try Helper.run(["untag", "dog_lora", "sdxl", "--catalog", catalog]).status == 0)
        #expect(try Catalog.open(at: catalog, create: false).entry(Reference(name: "dog_lora")).summary.tags == ["best", "dogs"])
        #expect(try Helper.run(["verify", "--catalog", catalog]).status == 0)
        #expect(try Helper.run(["verify", "dog_lora@1", "--catalog", catalog]).status == 0)
        #expect(try Helper.run(["rm", "dog_lora", "--catalog", catalog]).status == 0)
        #expect(try Helper.run(["gc", "--catalog", catalog]).status == 0)
        #expect(try Catalog.open(at: catalog, create: false).totals().blobs == 0)
    }

    @Test func exitCodes() throws {
        let folder = Fixture.folder()
        let catalog = folder + "/c.sqlite"
        let path = folder + "/a.safetensors"
        Fixture.write(try Fixture.checkpoint(step: 1, modules: 1), to: path)
        // Usage errors: 2.
        #expect(try Helper.run(["add", "--catalog", catalog]).status == 2)
        #expect(try Helper.run(["add", "-", "--catalog", catalog]).status == 2)  // stdin needs --name
        #expect(try Helper.run(["show", "x@0", "--catalog", catalog]).status == 2)
        #expect(try Helper.run(["list", "--bogus", "--catalog", catalog]).status == 2)
        // No catalog yet: list lists nothing; missing entries, unreadable files: 1 (verify: 2).
        let empty = try Helper.run(["list", "--json", "--catalog", catalog])
        #expect(empty.status == 0 && empty.out.isEmpty)
        let missing = try Helper.run(["show", "x", "--catalog", catalog])
        #expect(missing.status == 1 && missing.err.contains("no catalog here yet"))
        #expect(try Helper.run(["verify", "--catalog", catalog]).status == 2)
        #expect(try Helper.run(["add", folder + "/nope.safetensors", "--catalog", catalog]).status == 1)
        #expect(try Helper.run(["add", path, "--catalog", catalog]).status == 0)
        let notFound = try Helper.run(["show", "b", "--catalog", catalog])
        #expect(notFound.status == 1 && notFound.err.contains("no such entry"))
        #expect(try Helper.run(["get", "a@9", "-o", folder + "/x", "--catalog", catalog]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: folder + "/x"))
        #expect(try Helper.run(["rm", "b", "--catalog", catalog]).status == 1)
        // A file that is not a catalog: 1, untouched.
        let notCatalog = try Helper.run(["list", "--catalog", path])
        #expect(notCatalog.status == 1 && notCatalog.err.contains("not a tlkit catalog"))
        // The catalog comes from the environment when --catalog is absent.
        var environment = ProcessInfo.processInfo.environment
        environment["TLKIT_CATALOG"] = catalog
        let fromEnvironment = try Helper.run(["list", "--json"], environment: environment)
        #expect(fromEnvironment.status == 0 && fromEnvironment.out.contains("\"ref\":\"a@1\""))
    }

    @Test func addFromStandardInput() throws {
        let folder = Fixture.folder()
        let catalog = folder + "/c.sqlite"
        let path = folder + "/a.safetensors"
        Fixture.write(try Fixture.checkpoint(step: 2, modules: 1), to: path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Helper.path)
        process.arguments = ["add", "-", "--name", "piped", "--catalog", catalog]
        process.standardInput = FileHandle(forReadingAtPath: path)
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && text == "piped@1\n")
        #expect(try Catalog.open(at: catalog, create: false).entry(Reference(name: "piped")).summary.sha256 == Fixture.sha256(file: path))
    }
}
