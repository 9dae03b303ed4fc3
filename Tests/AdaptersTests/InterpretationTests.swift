import Foundation
import SafeTensors
import Testing
@testable import Adapters

/// `inspect` (lenient) and the reader (strict) interpret a file in one place, so they agree on format,
/// method and schedule; where the reader refuses a file, `inspect` says so in its note. Each case here
/// is one where the two used to disagree.
struct InterpretationTests {
    /// A copy of an official fixture folder whose hparams.yml is edited by `edit`.
    static func officialCopy(_ id: String, edit: (String) -> String) throws -> String {
        let folder = Fixtures.temporaryFolder().appendingPathComponent(id).path
        try FileManager.default.copyItem(atPath: Fixtures.path("adapters/\(id)"), toPath: folder)
        let hparams = folder + "/logs/hparams.yml"
        let text = try String(contentsOfFile: hparams, encoding: .utf8)
        let edited = edit(text)
        #expect(edited != text, "the edit should change hparams.yml")
        try edited.write(toFile: hparams, atomically: true, encoding: .utf8)
        return folder
    }

    @Test func missingMinRankIsRefusedAndInspectSaysSo() throws {
        let folder = try Self.officialCopy("official-ortho") { $0.replacingOccurrences(of: "\nmin_rank: 4\n", with: "\n") }
        do {
            _ = try AdapterReader.read(folder)
            Issue.record("the reader should refuse an official checkpoint whose hparams.yml has no min_rank")
        } catch let error as AdapterError {
            #expect(error.message.contains("has no min_rank") && error.message.contains("--min-rank"), "\(error.message)")
        }
        let identity = try FileIdentifier.identify(folder)
        #expect(identity.format == "tlora-official" && identity.method == .tlora)
        #expect(identity.schedule == nil, "inspect used to assume min rank 1")
        #expect(identity.scheduleNote?.contains("no min_rank") == true, "\(identity.scheduleNote ?? "no note")")
        // With the flag the reader applies the schedule hparams.yml describes otherwise.
        let withFlag = try AdapterReader.read(folder, flags: ScheduleFlags(minRank: 4))
        #expect(withFlag.schedule == RankSchedule(maxRank: 8, minRank: 4, rankAlpha: 1))
    }

    @Test func foldedScheduleWithChangedDataIsNotApplied() throws {
        let vanilla = try AdapterReader.read(Fixtures.path(Fixtures.adapters["official-vanilla"]!))
        let (kohya, _) = try Converter.convert(vanilla, ConvertRequest(to: .kohya))
        let path = Fixtures.temporaryFolder().appendingPathComponent("folded.safetensors").path
        try AdapterWriter.write(kohya, format: .kohya, to: path)

        // As written, both apply the folded schedule.
        let fresh = try AdapterReader.read(path)
        let freshIdentity = try FileIdentifier.identify(path)
        #expect(fresh.schedule != nil && fresh.method == .vanillaTlora && fresh.warnings.isEmpty)
        #expect(freshIdentity.schedule == fresh.schedule && freshIdentity.method == fresh.method && freshIdentity.scheduleNote == nil)

        // The same file claiming other data (as kohya's merge and resize scripts leave it): neither does.
        let digest = try #require(SafeTensorsFile.open(path).metadata["tlora.data_sha256"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerEnd = 8 + Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = String(decoding: bytes[8..<headerEnd], as: UTF8.self)
        let changed = header.replacingOccurrences(of: digest, with: String(repeating: "0", count: digest.count))
        #expect(changed.utf8.count == header.utf8.count && changed != header)
        bytes.replaceSubrange(8..<headerEnd, with: Array(changed.utf8))
        let stale = Fixtures.temporaryFolder().appendingPathComponent("stale.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: stale))

        let read = try AdapterReader.read(stale)
        #expect(read.schedule == nil && read.method == nil)
        #expect(read.warnings.contains { $0.contains("stale tlora metadata") })
        let identity = try FileIdentifier.identify(stale)
        #expect(identity.schedule == nil && identity.method == nil, "inspect used to report the schedule without checking the data")
        #expect(identity.scheduleNote?.contains("stale tlora metadata") == true, "\(identity.scheduleNote ?? "no note")")
    }

    @Test(arguments: [("official-ortho", AdapterMethod.orthoLora), ("official-vanilla", .lora)])
    func unmaskedOfficialMethodsKeepEveryRank(_ id: String, _ method: AdapterMethod) throws {
        let folder = try Self.officialCopy(id) { $0.replacingOccurrences(of: "trainer_class: sdxl_tlora", with: "trainer_class: sdxl_lora") }
        let read = try AdapterReader.read(folder)
        #expect(read.method == method)
        #expect(read.schedule == RankSchedule(maxRank: 8, minRank: 8), "an unmasked method keeps every component")
        let identity = try FileIdentifier.identify(folder)
        #expect(identity.method == read.method && identity.schedule == read.schedule, "inspect used to report hparams' min_rank")
        #expect(identity.scheduleNote == nil)
    }

    @Test func unknownMethodNameIsRefusedAndInspectSaysSo() throws {
        let ortho = try AdapterReader.read(Fixtures.path(Fixtures.adapters["official-ortho"]!))
        let (tlora, _) = try Converter.convert(ortho, ConvertRequest(to: .tlora))
        let path = Fixtures.temporaryFolder().appendingPathComponent("t.safetensors").path
        try AdapterWriter.write(tlora, format: .tlora, to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerEnd = 8 + Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let header = String(decoding: bytes[8..<headerEnd], as: UTF8.self)
        let changed = header.replacingOccurrences(of: "\"tlora.method\":\"tlora\"", with: "\"tlora.method\":\"xlora\"")
        #expect(changed.utf8.count == header.utf8.count && changed != header)
        bytes.replaceSubrange(8..<headerEnd, with: Array(changed.utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        #expect(throws: AdapterError.self) { try AdapterReader.read(path) }
        let identity = try FileIdentifier.identify(path)
        #expect(identity.method == nil && identity.scheduleNote?.contains("tlora.method is 'xlora'") == true,
                "\(identity.scheduleNote ?? "no note")")
        #expect(identity.schedule == ortho.schedule, "the schedule itself is still what the file says")
    }

    /// hparams.yml belongs to a checkpoint file on disk; a name that is not one (standard input, a catalog
    /// entry, a path that does not exist) has none, whatever lies beside it.
    @Test func hparamsOnlyBesideAFileOnDisk() throws {
        let run = Fixtures.temporaryFolder().appendingPathComponent("run")
        try FileManager.default.copyItem(atPath: Fixtures.path("adapters/official-ortho"), toPath: run.path)
        let weights = run.appendingPathComponent("checkpoint-20/pytorch_lora_weights.safetensors").path
        #expect(OfficialHparams.locate(forWeights: weights)?.hasSuffix("/run/logs/hparams.yml") == true)
        try FileManager.default.removeItem(atPath: weights)
        #expect(OfficialHparams.locate(forWeights: weights) == nil)
        #expect(OfficialHparams.locate(forWeights: "-") == nil)
    }

    @Test func unreadableHparamsIsRefusedAndInspectSaysWhy() throws {
        let folder = try Self.officialCopy("official-ortho") { _ in "lora_rank: [8\n" }
        #expect(throws: HparamsError.self) { try AdapterReader.read(folder) }
        let identity = try FileIdentifier.identify(folder)
        #expect(identity.schedule == nil)
        let note = identity.scheduleNote ?? ""
        #expect(note.contains("not valid YAML") && !note.contains("no ../logs/hparams.yml"), "\(note)")
    }
}
