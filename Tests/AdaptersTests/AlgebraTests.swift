import Foundation
import SafeTensors
import SDXL
import TestSupport
import Testing
@testable import Adapters

/// merge, diff, resize, extract and baking, against ΔW computed by PyTorch (Fixtures/reference).
struct AlgebraTests {
    func reference(_ id: String, _ module: ModuleInfo, t: Int) throws -> [Float] {
        try Fixtures.deltas.floats("\(id)/\(module.name)/t\(t)/probe")
    }

    func probe(_ module: ModuleInfo) throws -> [Float] { try Fixtures.deltas.floats("probe/in\(module.inFeatures)") }

    func read(_ id: String) throws -> Adapter { try AdapterReader.read(Fixtures.path(Fixtures.adapters[id]!)) }

    @Test func weightedConcatMergeIsTheWeightedSum() throws {
        let merged = try AdapterMerge.merge([
            .init(adapter: try read("peft"), weight: 0.5, label: "peft"),
            .init(adapter: try read("kohya"), weight: -2, label: "kohya"),
        ], method: .concat, rank: nil, atTimestep: nil).adapter
        var worst = 0.0
        for (i, module) in merged.modules.enumerated() {
            let expected = zip(try reference("peft", module, t: 0), try reference("kohya", module, t: 0)).map { 0.5 * $0 - 2 * $1 }
            let actual = apply(try merged.delta(i, at: nil), out: module.outFeatures, in: module.inFeatures, to: try probe(module))
            worst = max(worst, scaleRelative(actual, expected))
        }
        print("merge 0.5·peft − 2·kohya: worst \(worst)")
        #expect(worst <= 1e-6)
        #expect(merged.modules.count == 196)
    }

    @Test func tloraMergeKeepsTheScheduleAndSubtracts() throws {
        let ortho = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        let merged = try AdapterMerge.merge([.init(adapter: ortho, weight: 1, label: "a"), .init(adapter: ortho, weight: -1, label: "b")],
                                            method: .concat, rank: nil, atTimestep: nil).adapter
        #expect(merged.schedule == ortho.schedule)
        #expect(merged.componentsPerRank == 4, "2 inputs × 2 folded components per mask index")
        for (i, module) in merged.modules.enumerated() {
            for t in [0.0, 500, 999] {
                let delta = try merged.delta(i, at: t)
                let scale = try ortho.delta(ortho.modules.firstIndex { $0.name == module.name }!, at: t).map { abs($0) }.max()!
                #expect(delta.map { abs($0) }.max()! <= 1e-6 * scale, "\(module.name) at \(t): A − A must vanish")
            }
        }
        let doubled = try AdapterMerge.merge([.init(adapter: ortho, weight: 1, label: "a"), .init(adapter: ortho, weight: 1, label: "b")],
                                             method: .concat, rank: nil, atTimestep: nil).adapter
        for (i, module) in doubled.modules.enumerated() {
            for t in [0, 250, 999] {
                let expected = try reference("official-ortho", module, t: t).map { 2 * $0 }
                let actual = apply(try doubled.delta(i, at: Double(t)), out: module.outFeatures, in: module.inFeatures, to: try probe(module))
                #expect(scaleRelative(actual, expected) <= 1e-6, "\(module.name) t=\(t)")
            }
        }
    }

    @Test func differentSchedulesNeedATimestep() throws {
        let ortho = try AdapterReader.read(Fixtures.path("adapters/official-ortho"))
        let vanilla = try AdapterReader.read(Fixtures.path("adapters/official-vanilla"))
        #expect(throws: AdapterError.self) {
            try AdapterMerge.merge([.init(adapter: ortho, weight: 1, label: "a"), .init(adapter: vanilla, weight: 1, label: "b")],
                                   method: .concat, rank: nil, atTimestep: nil)
        }
        let merged = try AdapterMerge.merge([.init(adapter: ortho, weight: 1, label: "a"), .init(adapter: vanilla, weight: -1, label: "b")],
                                            method: .concat, rank: nil, atTimestep: 500).adapter
        #expect(merged.schedule == nil)
        for (i, module) in merged.modules.enumerated() {
            let expected = zip(try reference("official-ortho", module, t: 500), try reference("official-vanilla", module, t: 500)).map { $0 - $1 }
            let actual = apply(try merged.delta(i, at: nil), out: module.outFeatures, in: module.inFeatures, to: try probe(module))
            #expect(scaleRelative(actual, expected) <= 1e-6)
        }
    }

    @Test func svdMergeReportsItsError() throws {
        let result = try AdapterMerge.merge([.init(adapter: try read("peft"), weight: 1, label: "a"), .init(adapter: try read("kohya"), weight: 1, label: "b")],
                                            method: .svd, rank: 2, atTimestep: nil)
        let exact = try AdapterMerge.merge([.init(adapter: try read("peft"), weight: 1, label: "a"), .init(adapter: try read("kohya"), weight: 1, label: "b")],
                                           method: .concat, rank: nil, atTimestep: nil).adapter
        #expect(result.adapter.modules.allSatisfy { $0.rank == 2 })
        for (i, module) in exact.modules.enumerated() {
            let full = try exact.delta(i, at: nil), approx = try result.adapter.delta(i, at: nil)
            let error = (squaredDistance(full, approx) / squaredNorm(full)).squareRoot()
            #expect(abs(error - result.errors![i]) <= 1e-5, "\(module.name): reported \(result.errors![i]), actual \(error)")
        }
    }

    @Test func diffFiguresAndSelfDiff() throws {
        let peft = try read("peft"), kohya = try read("kohya")
        let (same, summary) = try AdapterDiff.compare(peft, peft, timesteps: [nil])
        #expect(same.allSatisfy { $0.relativeDifference == 0 })
        #expect(summary.relativeDifference == 0)
        let (results, _) = try AdapterDiff.compare(peft, kohya, timesteps: [nil])
        // The spot modules' figures from the PyTorch ΔW.
        for result in results {
            let keyA = "peft/\(result.module)/t0", keyB = "kohya/\(result.module)/t0"
            guard Fixtures.deltas.header.tensor(named: keyA) != nil else { continue }
            let a = try Fixtures.deltas.floats(keyA).map(Double.init), b = try Fixtures.deltas.floats(keyB).map(Double.init)
            let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
            let distance = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            #expect(abs(result.normA - na) <= 1e-6 * na)
            #expect(abs(result.normB - nb) <= 1e-6 * nb)
            #expect(abs(result.relativeDifference - distance / max(na, nb)) <= 1e-6)
            #expect(abs(result.cosine! - dot / (na * nb)) <= 1e-6)
        }
    }

    @Test func resizeByEnergyKeepsTheSmallestSufficientRank() throws {
        let peft = try read("peft")
        let (resized, results, overall) = try AdapterResize.resize(peft, to: .energy(0.9))
        #expect(overall >= 0.9)
        for (i, r) in results.enumerated() {
            #expect(r.retainedEnergy >= 0.9 - 1e-12)
            let svd = try LowRankSVD.of(try peft.factors(i), keep: peft.modules[i].rank)
            let total = svd.energy
            let oneLess = svd.s.prefix(r.rankOut - 1).reduce(0) { $0 + $1 * $1 } / total
            #expect(r.rankOut == 1 || oneLess < 0.9, "\(r.module): rank \(r.rankOut) is not the smallest")
            let full = try peft.delta(i, at: nil), approx = try resized.delta(i, at: nil)
            let kept = 1 - squaredDistance(full, approx) / squaredNorm(full)
            #expect(abs(kept - r.retainedEnergy) <= 1e-5)
        }
        #expect(throws: AdapterError.self) { try AdapterResize.resize(try AdapterReader.read(Fixtures.path("adapters/official-ortho")), to: .rank(2)) }
    }

    @Test func bakeIntoCheckpointAndExtractBack() throws {
        let folder = Fixtures.temporaryFolder()
        let baked = folder.appendingPathComponent("baked.safetensors").path
        let base = Fixtures.path("models/tiny-sdxl.safetensors")
        let peft = try read("peft")
        let report = try CheckpointBake.bake([.init(adapter: peft, weight: 1, label: "peft")], into: base, output: baked, atTimestep: 0)
        #expect(report.applied.count == 196 && report.skipped.isEmpty)
        let original = try SafeTensorsFile.open(base), result = try SafeTensorsFile.open(baked)
        #expect(Set(original.tensors.map(\.name)) == Set(result.tensors.map(\.name)))
        let model = try SDXLModel.open(base), bakedModel = try SDXLModel.open(baked)
        var touched = Set<String>()
        for (i, module) in peft.modules.enumerated() {
            let (component, path) = ModuleNames.split(module.name)
            let c = Component(rawValue: component)!
            touched.insert(model.locate(c, path + ".weight")!.info.name)
            let w0 = try model.floats(c, path + ".weight"), w1 = try bakedModel.floats(c, path + ".weight")
            let delta = try peft.delta(i, at: nil)
            // fp16 storage: one rounding of w0 + ΔW.
            for j in 0..<w0.count {
                let expected = Float(Float16(w0[j] + delta[j]))
                #expect(w1[j] == expected, "\(module.name)[\(j)]")
                if w1[j] != expected { break }
            }
        }
        for info in original.tensors where !touched.contains(info.name) {
            #expect(try result.bytes(info.name) == original.bytes(info.name), "\(info.name) must be byte-identical")
        }
        // Extracting the difference recovers the adapter up to the fp16 rounding of the baked weights.
        let (extracted, _, _) = try AdapterExtract.extract(base: model, tuned: bakedModel, target: .rank(4), modules: .all)
        let (diffs, _) = try AdapterDiff.compare(peft, extracted, timesteps: [nil])
        let worst = diffs.map(\.relativeDifference).max()!
        print("extract after bake: worst relative difference \(worst)")
        #expect(worst < 0.01)
        #expect(diffs.count == 196)
    }
}

func squaredNorm(_ x: [Float]) -> Double {
    var sum = 0.0
    for v in x { sum += Double(v) * Double(v) }
    return sum
}

func squaredDistance(_ x: [Float], _ y: [Float]) -> Double {
    var sum = 0.0
    for (a, b) in zip(x, y) { let d = Double(a) - Double(b); sum += d * d }
    return sum
}
