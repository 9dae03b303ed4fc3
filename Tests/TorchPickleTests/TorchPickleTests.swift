import Foundation
import SafeTensors
import Testing
import TestSupport
@testable import TorchPickle

/// The restricted torch.save reader against archives written by torch itself
/// (Fixtures/fixturegen/torch_pickles.py), and against pickles that would run code. Values must match
/// bit for bit: the reader only copies bytes.
struct TorchPickleTests {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static func archive(_ relative: String) throws -> TorchArchive {
        try TorchArchive(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(relative)))))
    }

    @Test func loraPtHoldsTheSafetensorsTensors() throws {
        let archive = try Self.archive("adapters/torch/lora.pt")
        let source = try SafeTensorsFile.open(Self.path("adapters/kohya/kohya_from_peft.safetensors"))
        #expect(archive.tensors.map(\.name) == source.tensors.map(\.name).sorted())
        for tensor in archive.tensors {
            let info = try source.info(tensor.name)
            #expect(tensor.dtype == info.dtype && tensor.shape == info.shape, "\(tensor.name)")
            #expect(tensor.data == Array(source.rawBytes(info)), "\(tensor.name)")
        }
        let file = try archive.safeTensors(name: "lora.pt")
        #expect(file.tensors.count == source.tensors.count)
    }

    @Test func viewsAndDtypesAreGatheredExactly() throws {
        let archive = try Self.archive("adapters/torch/layouts.pt")
        let reference = try SafeTensorsFile.open(Self.path("reference/torch_layouts.safetensors"))
        #expect(archive.tensors.map(\.name).sorted() == reference.tensors.map(\.name).sorted())
        for tensor in archive.tensors {
            let info = try reference.info(tensor.name)
            #expect(tensor.dtype == info.dtype && tensor.shape == info.shape, "\(tensor.name): \(tensor.dtype) \(tensor.shape)")
            #expect(tensor.data == Array(reference.rawBytes(info)), "\(tensor.name)")
        }
        #expect(archive.skipped == ["number"])
    }

    @Test func aTorchSavedSystemCallIsRefusedAndNothingRuns() throws {
        let marker = "/tmp/tlkit-hostile-pickle-ran"
        try? FileManager.default.removeItem(atPath: marker)
        #expect {
            _ = try Self.archive("adapters/torch/hostile-system.pt")
        } throws: { error in
            "\(error)".contains("system") && "\(error)".contains("refused")
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Pickles assembled here, so the file they would create lies in a fresh folder.
    @Test func hostilePicklesAreRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-pickle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("ran").path
        let command = Array("touch \(target)".utf8)
        func string(_ s: [UInt8]) -> [UInt8] { [0x8C, UInt8(s.count)] + s }
        let proto: [UInt8] = [0x80, 2]
        let cases: [(String, [UInt8])] = [
            ("GLOBAL os.system + REDUCE", proto + Array("cos\nsystem\n".utf8) + string(command) + [0x85, 0x52, 0x2E]),
            ("STACK_GLOBAL builtins.eval", [0x80, 4] + string(Array("builtins".utf8)) + string(Array("eval".utf8)) + [0x93]
                + string(Array("__import__('os').system('touch \(target)')".utf8)) + [0x85, 0x52, 0x2E]),
            ("INST", proto + [0x28] + Array("ios\nsystem\n".utf8) + [0x2E]),
            ("OBJ", proto + [0x28, 0x6F, 0x2E]),
            ("NEWOBJ", proto + Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x81, 0x2E]),
            ("a storage type called", proto + Array("ctorch\nFloatStorage\n".utf8) + [0x29, 0x52, 0x2E]),
            ("OrderedDict with arguments", proto + Array("ccollections\nOrderedDict\n".utf8) + string(command) + [0x85, 0x52, 0x2E]),
            ("truncated", proto + [0x7D, 0x8C, 0x05, 0x61]),
            ("length past the end", proto + [0x58, 0xFF, 0xFF, 0xFF, 0x7F]),
            ("no STOP", proto + [0x7D]),
            ("memo never stored", proto + [0x68, 0x07, 0x2E]),
        ]
        for (what, bytes) in cases {
            #expect(throws: TorchPickleError.self, "\(what)") { _ = try RestrictedUnpickler.load(bytes[...]) }
        }
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func plainContainersAreRead() throws {
        // {'a': [1, -2, 300000], 'b': (True, None, 2.5)}
        var bytes: [UInt8] = [0x80, 2, 0x7D, 0x28, 0x8C, 1, 0x61, 0x5D, 0x28, 0x4B, 1, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF, 0x4A, 0xE0, 0x93, 0x04, 0x00, 0x65]
        bytes += [0x8C, 1, 0x62, 0x88, 0x4E, 0x47] + withUnsafeBytes(of: (2.5).bitPattern.bigEndian) { Array($0) } + [0x87, 0x75, 0x2E]
        guard case let .dict(dict) = try RestrictedUnpickler.load(bytes[...]) else { Issue.record("not a dict"); return }
        #expect(dict.items.count == 2)
        guard case let .list(list) = dict.items[0].value else { Issue.record("not a list"); return }
        #expect(list.items.compactMap { if case let .int(n) = $0 { n } else { nil } } == [1, -2, 300_000])
        guard case let .tuple(t) = dict.items[1].value, case .bool(true) = t[0], case .none = t[1], case let .float(x) = t[2] else {
            Issue.record("not the tuple"); return
        }
        #expect(x == 2.5)
    }

    @Test func notAnArchive() {
        #expect(throws: TorchPickleError.self) { _ = try TorchArchive(bytes: Array("PK\u{3}\u{4} but nothing else".utf8)) }
        #expect(throws: TorchPickleError.self) { _ = try TorchArchive(bytes: []) }
    }
}
