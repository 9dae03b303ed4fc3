import CBLAS
import Foundation
import SafeTensors
import TestSupport
import Testing
@testable import Adapters

/// Conversions reproduce ΔW(t) (docs/contract.md, "Conversion, diff and ranks"): round trips, baking,
/// compression, LoRA → T-LoRA.
struct ConversionTests {
    static let timesteps: [Double] = [0, 1, 250, 500, 750, 999]

    func convert(_ adapter: Adapter, _ request: ConvertRequest) throws -> Adapter {
        let (converted, _) = try Converter.convert(adapter, request)
        let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
        try AdapterWriter.write(converted, format: request.to, to: path)
        return try AdapterReader.read(path)
    }

    /// Worst scale-relative error of ΔW(t) between two adapters over the test timesteps.
    func worstError(_ a: Adapter, _ b: Adapter, timesteps: [Double?]) throws -> Double {
        #expect(a.modules.map(\.name).sorted() == b.modules.map(\.name).sorted())
        var worst = 0.0
        for (i, module) in a.modules.enumerated() {
            let j = try #require(b.modules.firstIndex { $0.name == module.name })
            for t in timesteps {
                worst = max(worst, scaleRelative(try b.delta(j, at: t), try a.delta(i, at: t)))
            }
        }
        return worst
    }

    @Test func officialToTLoRAToOfficialIsByteIdentical() throws {
        let official = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        let tlora = try convert(official, ConvertRequest(to: .tlora))
        #expect(tlora.format == .tlkit && tlora.schedule == official.schedule && tlora.method == .tlora)
        let folder = Fixtures.temporaryFolder().appendingPathComponent("official").path
        let (back, _) = try Converter.convert(tlora, ConvertRequest(to: .tloraOfficial))
        try AdapterWriter.write(back, format: .tloraOfficial, to: folder)
        let original = try SafeTensorsFile.open(Fixtures.path("adapters/official-ortho/checkpoint-20/pytorch_lora_weights.safetensors"))
        let written = try SafeTensorsFile.open(folder + "/checkpoint-20/pytorch_lora_weights.safetensors")
        #expect(Set(original.tensors.map(\.name)) == Set(written.tensors.map(\.name)))
        for info in original.tensors {
            let other = try written.info(info.name)
            #expect(other.shape == info.shape && other.dtype == info.dtype, "\(info.name)")
            #expect(try written.bytes(info.name) == original.bytes(info.name), "\(info.name) bytes differ")
        }
        let hparams = try OfficialHparams.load(folder + "/logs/hparams.yml")
        #expect(hparams.loraRank == 8 && hparams.minRank == 4 && hparams.rankAlpha == 1 && hparams.method == .tlora)
        let reread = try AdapterReader.read(folder)
        #expect(try worstError(official, reread, timesteps: Self.timesteps) == 0)
    }

    /// The PEFT fixture has per-module alphas (alpha_pattern); its kohya copy has one alpha everywhere —
    /// diffusers' kohya loader applies a single alpha — with the ratios in lora_up, ΔW unchanged.
    @Test func kohyaOutputHasOneAlpha() throws {
        let peft = try AdapterReader.read(Fixtures.path(Fixtures.adapters["peft"]!))
        #expect(Set(peft.modules.map { $0.alpha ?? Float($0.rank) }).count > 1, "the fixture should mix alphas")
        let (converted, report) = try Converter.convert(peft, ConvertRequest(to: .kohya))
        #expect(report.notes.contains { $0.hasPrefix("alpha made one value") })
        let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
        try AdapterWriter.write(converted, format: .kohya, to: path)
        let file = try SafeTensorsFile.open(path)
        let alphas = try file.tensors.filter { $0.name.hasSuffix(".alpha") }.map { try file.floats($0.name)[0] }
        #expect(alphas.count == peft.modules.count && Set(alphas).count == 1, "\(Set(alphas))")
        let error = try worstError(peft, try AdapterReader.read(path), timesteps: [nil])
        print("peft → kohya with one alpha: \(error)")
        #expect(error <= 1e-6)
    }

    @Test(arguments: ["official-ortho", "official-vanilla"])
    func tloraToKohyaIsExactAndBack(_ id: String) throws {
        let tlora = try AdapterReader.read(Fixtures.path(Fixtures.adapters[id]!))
        let kohya = try convert(tlora, ConvertRequest(to: .kohya))
        #expect(kohya.format == .kohya)
        #expect(kohya.schedule == tlora.schedule, "the schedule survives in tlora.* metadata")
        #expect(kohya.componentsPerRank == (id == "official-ortho" ? 2 : 1))
        let error = try worstError(tlora, kohya, timesteps: Self.timesteps)
        let back = try convert(kohya, ConvertRequest(to: .tlora))
        let roundTrip = try worstError(tlora, back, timesteps: Self.timesteps)
        print("\(id) → kohya: \(error); → tlora: \(roundTrip)")
        #expect(error <= 1e-6)
        #expect(roundTrip <= 1e-6)
        let peft = try convert(tlora, ConvertRequest(to: .peft))
        #expect(try worstError(tlora, peft, timesteps: Self.timesteps) <= 1e-6)
    }

    @Test func kohyaToTLoRAToKohya() throws {
        // One rank for all modules: compress the mixed-rank fixture exactly (rank 4 ≥ every module's rank).
        let kohya = try convert(try AdapterReader.read(Fixtures.path(Fixtures.adapters["kohya"]!)), ConvertRequest(to: .kohya, rank: 4))
        let tlora = try convert(kohya, ConvertRequest(to: .tlora, flags: ScheduleFlags(minRank: 2)))
        #expect(tlora.schedule == RankSchedule(maxRank: 4, minRank: 2))
        #expect(try worstError(kohya, tlora, timesteps: [0]) <= 1e-6, "exact at t = 0")
        let back = try convert(tlora, ConvertRequest(to: .kohya))
        #expect(back.schedule == tlora.schedule)
        #expect(try worstError(tlora, back, timesteps: Self.timesteps) <= 1e-6)
        // Components are ordered by singular value: masking keeps the strongest.
        let f = try tlora.factors(0)
        let svd = try LowRankSVD.of(f, keep: f.rank)
        #expect(zip(svd.s, svd.s.dropFirst()).allSatisfy { $0 >= $1 })
    }

    @Test(arguments: [0.0, 1, 250, 500, 750, 999, 500.5])
    func bakeAtTimestepEqualsDeltaThere(_ t: Double) throws {
        let tlora = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        let baked = try convert(tlora, ConvertRequest(to: .kohya, atTimestep: t))
        #expect(baked.schedule == nil)
        #expect(baked.metadata["tlora.baked_at_timestep"] != nil)
        #expect(baked.modules.allSatisfy { $0.rank == 2 * tlora.schedule!.rank(at: t) })
        var worst = 0.0
        for (i, module) in tlora.modules.enumerated() {
            let j = baked.modules.firstIndex { $0.name == module.name }!
            worst = max(worst, scaleRelative(try baked.delta(j, at: nil), try tlora.delta(i, at: t)))
        }
        #expect(worst <= 1e-6)
    }

    @Test func rankCompressionReportsTheSVDError() throws {
        let kohya = try AdapterReader.read(Fixtures.path(Fixtures.adapters["kohya"]!))
        let (compressed, report) = try Converter.convert(kohya, ConvertRequest(to: .kohya, rank: 2))
        #expect(compressed.modules.allSatisfy { $0.rank == 2 })
        // Independent reference: full SVD of the formed ΔW (LAPACK dgesvd), Frobenius tail energy.
        var dropped = 0.0, total = 0.0
        for (i, module) in kohya.modules.enumerated() {
            let delta = try kohya.delta(i, at: nil).map(Double.init)
            let s = singularValues(delta, rows: module.outFeatures, cols: module.inFeatures)
            let moduleDropped = s.dropFirst(2).reduce(0) { $0 + $1 * $1 }, moduleTotal = s.reduce(0) { $0 + $1 * $1 }
            dropped += moduleDropped
            total += moduleTotal
            let expected = moduleTotal > 0 ? (moduleDropped / moduleTotal).squareRoot() : 0
            #expect(abs(report.modules[i].relativeError! - expected) <= 1e-6, "\(module.name)")
            // The compressed ΔW really has that error.
            let actual = frobenius(zip(try compressed.delta(i, at: nil), delta).map { Double($0) - $1 }) / frobenius(delta)
            #expect(abs(actual - expected) <= 1e-5, "\(module.name): \(actual) vs \(expected)")
        }
        #expect(abs(report.overallError! - (dropped / total).squareRoot()) <= 1e-6)
    }

    @Test func usageErrors() throws {
        let kohya = try AdapterReader.read(Fixtures.path(Fixtures.adapters["kohya"]!))
        #expect(throws: ConversionUsageError.self) { try Converter.convert(kohya, ConvertRequest(to: .kohya, atTimestep: 10)) }
        let tlora = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        #expect(throws: ConversionUsageError.self) { try Converter.convert(tlora, ConvertRequest(to: .kohya, rank: 2)) }
        #expect(throws: ConversionUsageError.self) { try Converter.convert(kohya, ConvertRequest(to: .tlora)) }
        #expect(throws: AdapterError.self) { try Converter.convert(kohya, ConvertRequest(to: .tlora, flags: ScheduleFlags(minRank: 1))) }
    }

    func frobenius(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

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
