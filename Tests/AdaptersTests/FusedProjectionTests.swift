import Foundation
import SafeTensors
import Testing
import TestSupport
@testable import Adapters

/// Fused FLUX.1/SD3 projections (BFL's `img_attn.qkv`, `linear1`; SAI's `attn_qkv`) against diffusers'
/// separate layers, both ways, on the fixtures of Fixtures/fixturegen/fused_qkv.py: diffusers' own kohya
/// FLUX converter and loader, and its `fuse_qkv_projections` for SD3, are the reference.
struct FusedProjectionTests {
    static func fused(_ name: String) -> String { Fixtures.path("adapters/fused/\(name).safetensors") }
    static let reference = try! SafeTensorsFile.open(Fixtures.path("reference/fused_qkv.safetensors"))

    /// ΔW of every module, by name, as the adapter applies it (scale included).
    static func deltas(_ adapter: Adapter) throws -> [String: [Float]] {
        var all: [String: [Float]] = [:]
        for (i, module) in adapter.modules.enumerated() { all[module.name] = try adapter.delta(i, at: nil) }
        return all
    }

    /// Largest |a − b| element by element.
    static func worst(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) elements")
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static func product(up: [Float], down: [Float], out: Int, rank: Int, in width: Int) -> [Float] {
        (0..<out * width).map { e in
            let o = e / width, i = e % width
            var sum = 0.0
            for c in 0..<rank { sum += Double(up[o * rank + c]) * Double(down[c * width + i]) }
            return Float(sum)
        }
    }

    /// A file written by `format` and read back, so the test sees what lands on disk (fp16 here).
    static func roundTrip(_ adapter: Adapter, _ format: OutputFormat) throws -> Adapter {
        let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
        try AdapterWriter.write(adapter, format: format, to: path)
        return try AdapterReader.read(path)
    }

    // MARK: fused → separate, against diffusers

    /// Every part's ΔW equals diffusers' B·A for the same kohya file (its loader applies exactly that: the
    /// fixture checks it against the PEFT layers it loads). The factors are the file's fp16 numbers and
    /// the scales powers of two, so only summation order differs: |Δ| ≤ 1e-6 on entries of ~1e-3.
    @Test func fusedKohyaSplitsAsDiffusersReadsIt() throws {
        let kohya = try AdapterReader.read(Self.fused("flux-fused-kohya"))
        #expect(kohya.base.base == .flux1)
        let (converted, report) = try Converter.convert(kohya, ConvertRequest(to: .peft))
        let written = try Self.roundTrip(converted, .peft)
        let ours = try Self.deltas(written)
        let names = Set(Self.reference.header.tensors.map(\.name).filter { $0.hasPrefix("flux.") && $0.hasSuffix(".lora_A.weight") }
            .map { String($0.dropFirst("flux.".count).dropLast(".lora_A.weight".count)) })
        #expect(Set(ours.keys) == names)
        for name in names {
            let a = try Self.reference.floats("flux.\(name).lora_A.weight"), b = try Self.reference.floats("flux.\(name).lora_B.weight")
            let module = try #require(written.modules.first { $0.name == name })
            let rank = a.count / module.inFeatures
            let theirs = Self.product(up: b, down: a, out: module.outFeatures, rank: rank, in: module.inFeatures)
            #expect(Self.worst(ours[name]!, theirs) <= 1e-6, "\(name)")
        }
        // Dense modules keep their down and rank; the block-diagonal one splits into its blocks, and its
        // zero v block is written as an explicit zero module.
        let rank = { (name: String) in written.modules.first { $0.name == "transformer.\(name)" }?.rank }
        #expect(rank("transformer_blocks.0.attn.to_q") == 4 && rank("single_transformer_blocks.0.proj_mlp") == 4)
        #expect(rank("transformer_blocks.0.attn.add_q_proj") == 2 && rank("transformer_blocks.0.attn.add_k_proj") == 2)
        #expect(rank("transformer_blocks.0.attn.add_v_proj") == 1)
        #expect(ours["transformer.transformer_blocks.0.attn.add_v_proj"]!.allSatisfy { $0 == 0 })
        #expect(report.notes.contains { $0.contains("split into their parts") })
        #expect(report.notes.contains { $0.contains("add_v_proj") })
    }

    /// Round trip fused → separate → fused: the dense modules come back bit for bit (the parts share
    /// one down, which fusing detects), the block-diagonal one with the same ΔW at the rank of its blocks.
    @Test func fusedToSeparateToFusedReproducesDeltaW() throws {
        let kohya = try AdapterReader.read(Self.fused("flux-fused-kohya"))
        let peft = try Self.roundTrip(try Converter.convert(kohya, ConvertRequest(to: .peft)).0, .peft)
        let back = try Self.roundTrip(try Converter.convert(peft, ConvertRequest(to: .kohya)).0, .kohya)
        #expect(Set(back.modules.map(\.name)) == Set(kohya.modules.map(\.name)))
        let before = try Self.deltas(kohya), after = try Self.deltas(back)
        for (name, delta) in before { #expect(Self.worst(delta, after[name]!) <= 1e-6, "\(name)") }
        for name in ["transformer.transformer_blocks.0.attn.to_qkv", "transformer.single_transformer_blocks.0.linear1"] {
            let i = kohya.modules.firstIndex { $0.name == name }!, j = back.modules.firstIndex { $0.name == name }!
            guard case let .lowRank(x) = try kohya.factors(i), case let .lowRank(y) = try back.factors(j) else { Issue.record("not low-rank"); continue }
            #expect(x.down == y.down && x.rank == y.rank, "\(name)")
            #expect(Self.worst(x.up.map { $0 * x.scale }, y.up.map { $0 * y.scale }) == 0, "\(name)")
        }
        #expect(back.modules.first { $0.name.hasSuffix("to_added_qkv") }?.rank == 4)
    }

    // MARK: separate → fused, against the file diffusers reads back

    /// PEFT parts (ranks 2 and 3 with scales 2 and 2/3, parts missing, one shared down) stacked into kohya's
    /// fused modules: the ΔW of the fixture's fused file, which diffusers' kohya loader reads back to the
    /// PEFT parts (zero for the missing ones). In memory the only rounding is the fixture's fp16 up × 2/3
    /// (half an ulp of ~0.013 is 3.8e-6, times downs up to ~0.08, over 3 components: ~1e-6 in ΔW entries of
    /// ~1e-3): |Δ| ≤ 3e-6. Written as fp16 kohya, the one alpha of the file puts
    /// ratios like 6/2 into lora_up, rounded to fp16 (2⁻¹¹ relative): |Δ| ≤ 1e-3 · max |ΔW|.
    @Test func separatePartsFuseAsTheReference() throws {
        let peft = try AdapterReader.read(Self.fused("flux-parts-peft"))
        #expect(peft.base.base == .flux1)
        let (converted, report) = try Converter.convert(peft, ConvertRequest(to: .kohya))
        let written = try Self.roundTrip(converted, .kohya)
        let reference = try AdapterReader.read(Self.fused("flux-parts-kohya"))
        let ours = try Self.deltas(converted), onDisk = try Self.deltas(written), theirs = try Self.deltas(reference)
        #expect(Set(ours.keys) == Set(theirs.keys) && Set(onDisk.keys) == Set(theirs.keys))
        for (name, delta) in theirs {
            #expect(Self.worst(ours[name]!, delta) <= 3e-6, "\(name)")
            #expect(Self.worst(onDisk[name]!, delta) <= 1e-3 * delta.map(abs).max()!, "\(name)")
        }
        let rank = { (suffix: String) in written.modules.first { $0.name.hasSuffix(suffix) }?.rank }
        #expect(rank("attn.to_qkv") == 5)            // 2 + 3, v absent
        #expect(rank("attn.to_added_qkv") == 6)      // 2 + 2 + 2
        #expect(rank("linear1") == 2)                // one shared down, proj_mlp absent
        #expect(report.notes.contains { $0.contains("absent") && $0.contains("proj_mlp") && $0.contains("attn.to_v") })
        // …and back (in memory): every part's ΔW again, the absent ones as explicit zero modules.
        let split = try Converter.convert(converted, ConvertRequest(to: .peft)).0
        let parts = try Self.deltas(split), original = try Self.deltas(peft)
        for (name, delta) in original { #expect(Self.worst(parts[name]!, delta) <= 1e-6, "\(name)") }
        #expect(parts["transformer.transformer_blocks.0.attn.to_v"]?.allSatisfy { $0 == 0 } == true)
        #expect(parts["transformer.single_transformer_blocks.0.proj_mlp"]?.allSatisfy { $0 == 0 } == true)
    }

    /// SD3: the fused ΔW of the PEFT fixture is what diffusers' `fuse_qkv_projections` puts in `to_qkv` and
    /// `to_added_qkv` after merging the LoRA (q, k, v rows in that order). The reference is a difference of
    /// two fp32 weights of size ~0.1, so |Δ| ≤ 1e-6.
    @Test func sd3FusedLayoutIsDiffusers() throws {
        let peft = try AdapterReader.read(Fixtures.path("adapters/bases/sd3-peft.safetensors"))
        let fused = try Converter.convert(peft, ConvertRequest(to: .kohya)).0
        let ours = try Self.deltas(fused)
        let names = Self.reference.header.tensors.map(\.name).filter { $0.hasPrefix("sd3.") }
        #expect(names.count == 4)
        for key in names {
            let name = String(key.dropFirst("sd3.".count).dropLast(".delta".count))
            #expect(Self.worst(try #require(ours[name], "\(name)"), try Self.reference.floats(key)) <= 1e-6, "\(name)")
        }
        // The kohya fixture (fused by the bases group) splits back to the PEFT parts.
        let kohya = try AdapterReader.read(Fixtures.path("adapters/bases/sd3-kohya.safetensors"))
        let split = try Self.deltas(try Converter.convert(kohya, ConvertRequest(to: .peft)).0), original = try Self.deltas(peft)
        #expect(Set(split.keys) == Set(original.keys))
        for (name, delta) in original { #expect(Self.worst(split[name]!, delta) <= 1e-6, "\(name)") }
    }

    // MARK: merge and diff see one layout

    @Test func diffAndMergePairFusedWithSeparate() throws {
        let kohya = try AdapterReader.read(Fixtures.path("adapters/bases/flux-kohya.safetensors"))
        let peft = try AdapterReader.read(Fixtures.path("adapters/bases/flux-peft.safetensors"))
        let (results, summary) = try AdapterDiff.compare(kohya, peft, timesteps: [nil])
        #expect(summary.onlyInA.isEmpty && summary.onlyInB.isEmpty)
        #expect(results.count == peft.modules.count)
        for r in results { #expect(r.relativeDifference < 1e-3, "\(r.module)") }
        let merged = try AdapterMerge.merge([.init(adapter: kohya, weight: 1, label: "a"), .init(adapter: peft, weight: -1, label: "b")],
                                            method: .concat, rank: nil, atTimestep: nil).adapter
        #expect(Set(merged.modules.map(\.name)) == Set(peft.modules.map(\.name)))
        for (i, module) in merged.modules.enumerated() {
            let delta = try merged.delta(i, at: nil), scale = try Self.deltas(peft)[module.name]!.map(abs).max()!
            #expect(delta.map(abs).max()! <= 1e-3 * scale, "\(module.name)")
        }
    }

    // MARK: the algebra on small matrices, exactly

    static func lowRank(_ rank: Int, in width: Int, out: Int, seed: Int, alpha: Float? = nil) -> LowRank {
        let down = (0..<rank * width).map { Float(($0 * 7 + seed * 13) % 11) - 5 }
        let up = (0..<out * rank).map { Float(($0 * 5 + seed * 3) % 9) - 4 }
        return LowRank(down: down, up: up, rank: rank, inFeatures: width, outFeatures: out, alpha: alpha)
    }

    @Test func splitAndFuseAreExact() throws {
        let rows = [3, 3, 3], l = Self.lowRank(2, in: 4, out: 9, seed: 1, alpha: 4)
        #expect(FusedFactors.blockColumns(l, rows: rows) == nil)
        let parts = rows.indices.map { FusedFactors.part(l, rows: rows, part: $0, plan: .sharedDown) }
        let full = Delta.compute(.lowRank(l), keep: 2)
        for (j, p) in parts.enumerated() {
            #expect(p.rank == 2 && p.alpha == 4)
            #expect(Delta.compute(.lowRank(p), keep: 2) == Array(full[(j * 3 * 4)..<((j + 1) * 3 * 4)]))
        }
        let plan = try #require(FusedFactors.fusePlan(parts))
        #expect(plan == .sharedDown(contributing: [0, 1, 2]))
        #expect(FusedFactors.fuse(parts, rows: rows, inFeatures: 4, plan: plan) == l)

        // Different downs, ranks and alphas, v missing: stacked, each scale in its block, v rows zero.
        let q = Self.lowRank(1, in: 4, out: 3, seed: 2, alpha: 2), k = Self.lowRank(2, in: 4, out: 3, seed: 3)
        let stackPlan = try #require(FusedFactors.fusePlan([q, k, nil]))
        #expect(stackPlan == .stacked(contributing: [0, 1]))
        let fused = FusedFactors.fuse([q, k, nil], rows: rows, inFeatures: 4, plan: stackPlan)
        #expect(fused.rank == 3 && fused.scale == 1)
        let delta = Delta.compute(.lowRank(fused), keep: 3)
        #expect(Array(delta[0..<12]) == Delta.compute(.lowRank(q), keep: 1))
        #expect(Array(delta[12..<24]) == Delta.compute(.lowRank(k), keep: 2))
        #expect(delta[24...].allSatisfy { $0 == 0 })
        // Its up is block-diagonal: the split finds the blocks again, v as an explicit zero module.
        let columns = try #require(FusedFactors.blockColumns(fused, rows: rows))
        #expect(columns == [[0], [1, 2], []])
        let back = rows.indices.map { FusedFactors.part(fused, rows: rows, part: $0, plan: .blocks(columns: columns)) }
        #expect(Delta.compute(.lowRank(back[0]), keep: 1) == Delta.compute(.lowRank(q), keep: 1))
        #expect(Delta.compute(.lowRank(back[1]), keep: 2) == Delta.compute(.lowRank(k), keep: 2))
        #expect(back[2].rank == 1 && back[2].up.allSatisfy { $0 == 0 })
        // A zero part takes no rank when fused again.
        #expect(FusedFactors.fusePlan(back) == .stacked(contributing: [0, 1]))
    }

    @Test func linear1RowsAndBadShapes() throws {
        let group = try #require(FusedProjections.flux1.group(fused: "transformer.single_transformer_blocks.3.linear1"))
        #expect(group.partRows(out: 7 * 8, inFeatures: 8) == [8, 8, 8, 32])
        #expect(group.partRows(out: 24, inFeatures: 8) == nil)
        #expect(group.partRows(known: [0: 8], inFeatures: 8) == [8, 8, 8, 32])
        #expect(group.partRows(known: [3: 40], inFeatures: 8) == [8, 8, 8, 40])
        #expect(group.partRows(known: [1: 9], inFeatures: 8) == nil)
        let qkv = try #require(FusedProjections.sd3.group(part: "transformer.transformer_blocks.2.attn2.to_k"))
        #expect(qkv.group.fused == "transformer.transformer_blocks.2.attn2.to_qkv" && qkv.part == 1)
        #expect(qkv.group.partRows(out: 10, inFeatures: 4) == nil)
    }

    /// A scheduled adapter keeps its components' meaning: a split keeps the whole down even when the up is
    /// block-structured; a fuse of different downs interleaves the parts' components (stacking would reorder
    /// them), and is refused by name where the adapter already has several components per mask index.
    @Test func scheduledAdaptersKeepTheirComponents() throws {
        let rows = [4, 4, 4]
        let q = Self.lowRank(2, in: 4, out: 4, seed: 4), k = Self.lowRank(2, in: 4, out: 4, seed: 5)
        let fused = FusedFactors.fuse([q, k, nil], rows: rows, inFeatures: 4, plan: .stacked(contributing: [0, 1]))
        let a = "transformer.transformer_blocks.0.attn."
        func adapter(_ modules: [(String, LowRank)]) -> Adapter {
            var result = Adapter(format: .tlkit, method: nil, schedule: RankSchedule(maxRank: 4, minRank: 1, rankAlpha: 1), componentsPerRank: 1,
                                 modules: modules.map { ModuleInfo(name: $0.0, isOrtho: false, rank: $0.1.rank, inFeatures: 4, outFeatures: $0.1.outFeatures, dtype: .f32) },
                                 metadata: [:], source: InMemoryFactors(modules.map { .lowRank($0.1) }))
            result.base = BaseVerdict(base: .flux1)
            return result
        }
        let split = try FusedLayout.split(adapter([(a + "to_qkv", fused)])).adapter
        #expect(split.modules.map(\.rank) == [4, 4, 4])
        for (j, module) in split.modules.enumerated() {
            for t in [0.0, 500, 999] {
                let whole = try adapter([(a + "to_qkv", fused)]).delta(0, at: t)
                #expect(try split.delta(j, at: t) == Array(whole[(j * 16)..<((j + 1) * 16)]), "\(module.name) at \(t)")
            }
        }
        // Different downs are interleaved (component 2c + j is part j's c): at every t the fused ΔW's rows are
        // each part's masked ΔW, and the absent v's rows stay zero. A third module is padded alongside.
        let outside = Self.lowRank(2, in: 4, out: 4, seed: 6)
        let parts = adapter([(a + "to_q", q), (a + "to_k", k), ("transformer.transformer_blocks.0.ff.net.2", outside)])
        let interleaved = try FusedLayout.fuse(parts).adapter
        #expect(interleaved.componentsPerRank == 2 && interleaved.modules.map(\.rank) == [4, 4])
        for t in [0.0, 300, 700, 999] {
            let whole = try interleaved.delta(0, at: t)
            let expected = try parts.delta(0, at: t) + parts.delta(1, at: t) + [Float](repeating: 0, count: 16)
            #expect(scaleRelative(whole, expected) <= 1e-6, "to_qkv at \(t)")
            #expect(scaleRelative(try interleaved.delta(1, at: t), try parts.delta(2, at: t)) <= 1e-6, "padded module at \(t)")
        }
        var twice = parts
        twice.componentsPerRank = 2
        #expect { try FusedLayout.fuse(twice) } throws: { "\($0)".contains(a + "to_qkv") && "\($0)".contains("--at-timestep") }
        // The parts of a split share their down: they fuse back to the same factors.
        let back = try FusedLayout.fuse(split).adapter
        #expect(try back.factors(0) == .lowRank(fused))
    }

    /// A fused module whose rows do not divide, or an adapter holding a fused module and one of its parts:
    /// refused by name, never a crash or a dropped module.
    @Test func impossibleLayoutsAreRefusedByName() throws {
        let kohya = try AdapterReader.read(Self.fused("flux-fused-kohya"))
        var odd = kohya
        let i = odd.modules.firstIndex { $0.name.hasSuffix("attn.to_qkv") }!
        odd.modules[i].outFeatures = 10
        #expect { try FusedLayout.split(odd) } throws: { "\($0)".contains("transformer.transformer_blocks.0.attn.to_qkv") }
        var both = kohya
        both.modules[kohya.modules.firstIndex { $0.name.hasSuffix("attn.to_out.0") }!].name = "transformer.transformer_blocks.0.attn.to_q"
        #expect { try FusedLayout.split(both) } throws: { "\($0)".contains("both in the adapter") }
    }
}
