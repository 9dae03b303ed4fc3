import Foundation
import Testing
import TestSupport
@testable import Catalog
import SafeTensors

/// The subcommands as users run them: output streams, JSON lines and exit codes.
@Suite struct CatalogCommandTests {
    @Test func addListShowGetRmTagVerifyGc() throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = folder + "/c.sqlite"
        let path = folder + "/dog_lora.safetensors"
        var r = SplitMix64(seed: 3)
        SafeTensorsFixture.write(try SafeTensorsFixture.file([("lora_unet_x.lora_down.weight", .f16, [8, 64], SafeTensorsFixture.floats(r.normal(count: 512), .f16)),
                                        ("lora_unet_x.lora_up.weight", .f16, [64, 8], SafeTensorsFixture.floats(r.normal(count: 512), .f16))],
                                       metadata: ["ss_base_model_version": "sdxl_base_v1-0", "modelspec.trigger_phrase": "sks dog"]), to: path)
        let add = try CLI.run(["add", path, "--tag", "dogs", "--note", "first", "--catalog", catalog])
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout == "dog_lora@1\n")
        let again = try CLI.run(["add", path, "--catalog", catalog])
        #expect(again.status == 0 && again.stdout == "dog_lora@1\n" && again.stderr.contains("identical bytes already stored as dog_lora@1"))

        let list = try CLI.run(["list", "--json", "--catalog", catalog])
        #expect(list.status == 0)
        let lines = list.stdout.split(separator: "\n")
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
        #expect(object["sha256"] as? String == SafeTensorsFixture.sha256(file: path))
        #expect(try CLI.run(["list", "--json", "--base", "sd_v1", "--catalog", catalog]).stdout.isEmpty)

        let show = try CLI.run(["show", "dog_lora", "--catalog", catalog])
        let sha = SafeTensorsFixture.sha256(file: path)
        #expect(show.status == 0)
        #expect(show.stdout.contains("AutoV2      \(sha.prefix(10))"))
        let file = try SafeTensorsFile.open(path)
        let addnet = SafeTensorsFixture.sha256(file.dataSection)
        #expect(show.stdout.contains("addnet      \(addnet)"))
        #expect(show.stdout.contains("modelspec.trigger_phrase = sks dog"))
        let showJSON = try CLI.run(["show", "dog_lora@1", "--json", "--catalog", catalog])
        let detail = try JSONSerialization.jsonObject(with: Data(showJSON.stdout.utf8)) as! [String: Any]
        #expect(detail["autov2"] as? String == String(sha.prefix(10)))
        #expect(detail["hash_sha256"] as? String == "0x" + addnet)

        let out = folder + "/back.safetensors"
        #expect(try CLI.run(["get", "dog_lora", "-o", out, "--catalog", catalog]).status == 0)
        #expect(SafeTensorsFixture.sha256(file: out) == sha)
        let streamed = try CLI.run(["get", "dog_lora@1", "-o", "-", "--catalog", catalog])
        #expect(streamed.status == 0 && SafeTensorsFixture.sha256(streamed.stdoutData) == sha)

        #expect(try CLI.run(["tag", "dog_lora", "best", "sdxl", "--catalog", catalog]).status == 0)
        #expect(try CLI.run(["untag", "dog_lora", "sdxl", "--catalog", catalog]).status == 0)
        #expect(try Catalog.open(at: catalog, create: false).entry(Reference(name: "dog_lora")).summary.tags == ["best", "dogs"])
        #expect(try CLI.run(["verify", "--catalog", catalog]).status == 0)
        #expect(try CLI.run(["verify", "dog_lora@1", "--catalog", catalog]).status == 0)
        #expect(try CLI.run(["rm", "dog_lora", "--catalog", catalog]).status == 0)
        #expect(try CLI.run(["gc", "--catalog", catalog]).status == 0)
        #expect(try Catalog.open(at: catalog, create: false).totals().blobs == 0)
    }

    @Test func exitCodes() throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = folder + "/c.sqlite"
        let path = folder + "/a.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 1, modules: 1), to: path)
        // Usage errors: 2.
        #expect(try CLI.run(["add", "--catalog", catalog]).status == 2)
        #expect(try CLI.run(["add", "-", "--catalog", catalog]).status == 2)  // stdin needs --name
        #expect(try CLI.run(["show", "x@0", "--catalog", catalog]).status == 2)
        #expect(try CLI.run(["list", "--bogus", "--catalog", catalog]).status == 2)
        // No catalog yet: list lists nothing; missing entries, unreadable files: 1 (verify: 2).
        let empty = try CLI.run(["list", "--json", "--catalog", catalog])
        #expect(empty.status == 0 && empty.stdout.isEmpty)
        let missing = try CLI.run(["show", "x", "--catalog", catalog])
        #expect(missing.status == 1 && missing.stderr.contains("no catalog here yet"))
        // A failure is one line on stderr naming the command, nothing on stdout.
        #expect(missing.stderr.hasPrefix("tlkit show: ") && missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
        #expect(missing.stdout.isEmpty)
        let unverifiable = try CLI.run(["verify", "--catalog", catalog])
        #expect(unverifiable.status == 2 && unverifiable.stderr.hasPrefix("tlkit verify: "), "\(unverifiable.stderr)")
        #expect(try CLI.run(["add", folder + "/nope.safetensors", "--catalog", catalog]).status == 1)
        #expect(try CLI.run(["add", path, "--catalog", catalog]).status == 0)
        let notFound = try CLI.run(["show", "b", "--catalog", catalog])
        #expect(notFound.status == 1 && notFound.stderr.contains("no such entry"))
        #expect(try CLI.run(["get", "a@9", "-o", folder + "/x", "--catalog", catalog]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: folder + "/x"))
        #expect(try CLI.run(["rm", "b", "--catalog", catalog]).status == 1)
        // A file that is not a catalog: 1, untouched.
        let notCatalog = try CLI.run(["list", "--catalog", path])
        #expect(notCatalog.status == 1 && notCatalog.stderr.contains("not a tlkit catalog"))
        // The catalog comes from the environment when --catalog is absent.
        var environment = ProcessInfo.processInfo.environment
        environment["TLKIT_CATALOG"] = catalog
        let fromEnvironment = try CLI.run(["list", "--json"], environment: environment)
        #expect(fromEnvironment.status == 0 && fromEnvironment.stdout.contains("\"ref\":\"a@1\""))
    }

    @Test func addFromStandardInput() throws {
        let folder = SafeTensorsFixture.folder()
        let catalog = folder + "/c.sqlite"
        let path = folder + "/a.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.checkpoint(step: 2, modules: 1), to: path)
        let piped = try CLI.run(["add", "-", "--name", "piped", "--catalog", catalog], stdin: try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(piped.status == 0 && piped.stdout == "piped@1\n", "\(piped.stderr)")
        #expect(try Catalog.open(at: catalog, create: false).entry(Reference(name: "piped")).summary.sha256 == SafeTensorsFixture.sha256(file: path))
    }
}
