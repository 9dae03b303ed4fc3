import CBLAS
import Foundation
import SafeTensors
import Testing
import TestSupport
@testable import Adapters

/// LyCORIS LoCon / LoHa / LoKr files written by LyCORIS itself (Fixtures/fixturegen/lycoris_families.py):
/// each module's ΔW equals the one LyCORIS' own module applies, and converting to kohya or PEFT keeps it.
/// Tolerance: 1e-5 of max|ΔW| (Float32 factors, products accumulated in Float64 here and Float32 by torch).
struct FamiliesTests {
    static let files = ["locon", "loha", "lokr", "lokr-both", "lokr-full",
                        "loha-conv", "lokr-conv", "lokr-conv-full", "locon-tucker", "loha-tucker", "lokr-tucker"]
    static let tolerance = 1e-5
    static let reference = try! SafeTensorsFile.open(Fixtures.path("reference/families_delta.safetensors"))

    static func read(_ id: String) throws -> Adapter {
        try AdapterReader.read(Fixtures.path("adapters/lycoris/\(id).safetensors"))
    }

    /// The reference ΔW of a module, keyed `<file id>/<kohya module name>`.
    static func expected(_ id: String, _ module: ModuleInfo) throws -> [Float] {
        let path = module.name.dropFirst("unet.".count).replacingOccurrences(of: ".", with: "_")
        return try reference.floats(reference.info("\(id)/lora_unet_\(path)"))
    }

    @Test(arguments: files)
    func deltaMatchesLyCORIS(_ id: String) throws {
        let adapter = try Self.read(id)
        #expect(!adapter.modules.isEmpty)
        for (i, module) in adapter.modules.enumerated() {
            let error = scaleRelative(try adapter.delta(i, at: nil), try Self.expected(id, module))
            #expect(error <= Self.tolerance, "\(id) \(module.name): \(error)")
        }
    }

    @Test func exactRanksAndShapes() throws {
        let loha = try Self.read("loha")
        #expect(loha.modules.map(\.rank) == [9, 9])   // r1 · r2 = 3 · 3
        #expect(loha.modules.map(\.inFeatures) == [64, 512])
        let lokr = try Self.read("lokr")
        // full 8×8 ⊗ full 8×8: 8 · 8; full 8×8 ⊗ (16×4 · 4×64): 8 · 4
        #expect(lokr.modules.map(\.rank) == [64, 32])
        #expect(try Self.read("lokr-both").modules.map(\.rank) == [4])
        let locon = try Self.read("locon")
        #expect(locon.modules.map(\.kernel).sorted { $0.count < $1.count } == [[], [3, 3]])
    }

    @Test(arguments: files)
    func convertsExactlyToKohyaAndPEFT(_ id: String) throws {
        let adapter = try Self.read(id)
        for format in [OutputFormat.kohya, .peft] {
            let (converted, report) = try Converter.convert(adapter, ConvertRequest(to: format))
            #expect(report.overallError == nil)
            let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
            try AdapterWriter.write(converted, format: format, to: path)
            let back = try AdapterReader.read(path)
            for module in adapter.modules {
                let j = try #require(back.modules.firstIndex { $0.name == module.name })
                let error = scaleRelative(try back.delta(j, at: nil), try Self.expected(id, module))
                #expect(error <= Self.tolerance, "\(id) → \(format): \(module.name): \(error)")
            }
        }
    }

    /// `--rank N` on a LoKr: the reported error is the tail energy of ΔW's singular values, computed here
    /// from the LyCORIS reference ΔW with a full LAPACK SVD.
    @Test func rankTruncationReportsTheError() throws {
        let adapter = try Self.read("lokr-full")
        let (compressed, report) = try Converter.convert(adapter, ConvertRequest(to: .kohya, rank: 4))
        for (i, module) in adapter.modules.enumerated() {
            let delta = try Self.expected("lokr-full", module).map(Double.init)
            let s = singularValues(delta, rows: module.outFeatures, cols: module.inFeatures)
            let total = s.reduce(0) { $0 + $1 * $1 }, dropped = s.dropFirst(4).reduce(0) { $0 + $1 * $1 }
            let expected = (dropped / total).squareRoot()
            #expect(expected > 0.1)
            #expect(abs(report.modules[i].relativeError! - expected) <= 1e-5, "\(module.name)")
            #expect(compressed.modules[i].rank == 4)
        }
    }

    @Test func inspectNamesTheFamily() throws {
        let expected = ["locon": "locon", "loha": "loha", "lokr": "lokr", "lokr-full": "lokr", "dora": "dora"]
        for (id, family) in expected {
            let identity = try FileIdentifier.identify(Fixtures.path("adapters/lycoris/\(id).safetensors"))
            #expect(identity.family == family, "\(id)")
        }
        let loha = try FileIdentifier.identify(Fixtures.path("adapters/lycoris/loha.safetensors"))
        #expect(loha.ranks == [9, 9])
        #expect(loha.alphas == [1.5, 1.5])
        #expect(try FileIdentifier.identify(Fixtures.path(Fixtures.adapters["kohya"]!)).family == "lora")
    }

    @Test func doraIsRefusedWithAReason() throws {
        #expect {
            _ = try Self.read("dora")
        } throws: { error in
            "\(error)".contains("DoRA") && "\(error)".contains("base")
        }
    }

    func singularValues(_ x: [Double], rows: Int, cols: Int) -> [Double] {
        var a = x
        var s = [Double](repeating: 0, count: min(rows, cols))
        var superb = [Double](repeating: 0, count: min(rows, cols))
        var u = [Double](repeating: 0, count: 1), vt = [Double](repeating: 0, count: 1)
        let info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "N")), Int32(rows), Int32(cols), &a, Int32(cols), &s, &u, 1, &vt, 1, &superb)
        precondition(info == 0)
        return s
    }
}
