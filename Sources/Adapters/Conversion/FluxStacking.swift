import Foundation

/// kohya's FLUX.1 names exist only for Black Forest Labs' fused layers: a double block's `img_attn.qkv` and
/// `txt_attn.qkv`, a single block's `linear1` (q, k, v and the MLP input). A LoRA of separate q, k and v
/// layers (diffusers' names, the official FLUX T-LoRA) is the LoRA of the fused layer whose output rows
/// stack theirs: ΔW_fused = [ΔW_q; ΔW_k; ΔW_v] (and zero rows for linear1's MLP part), exactly
/// (docs/families.md, "The official FLUX.1 T-LoRA").
enum FluxStacking {
    /// FLUX.1's MLP is 4 × the width wide; linear1 computes q, k, v and the MLP input.
    static let mlpRatio = 4

    struct Group: Sendable {
        let fused: String
        /// The q, k, v module indices (nil where the adapter has none).
        var parts: [Int?]
        let extraRows: Int
    }

    /// The fused groups of `adapter` whose parts are all plain linear LoRAs of one rank and a square width.
    static func groups(_ adapter: Adapter) -> [Group] {
        var found: [String: Group] = [:]
        for (index, module) in adapter.modules.enumerated() {
            let path = ModuleNames.split(module.name).1
            let pieces = path.split(separator: ".").map(String.init)
            guard module.component == "transformer", pieces.count >= 4, !module.isOrtho, !module.isConvolution,
                  module.inFeatures == module.outFeatures else { continue }
            let block = pieces[0] + "." + pieces[1], leaf = pieces.dropFirst(2).joined(separator: ".")
            let slots: [String: (String, Int)]
            if pieces[0] == "transformer_blocks" {
                slots = ["attn.to_q": ("attn.to_qkv", 0), "attn.to_k": ("attn.to_qkv", 1), "attn.to_v": ("attn.to_qkv", 2),
                         "attn.add_q_proj": ("attn.to_added_qkv", 0), "attn.add_k_proj": ("attn.to_added_qkv", 1),
                         "attn.add_v_proj": ("attn.to_added_qkv", 2)]
            } else if pieces[0] == "single_transformer_blocks" {
                slots = ["attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", 1), "attn.to_v": ("linear1", 2)]
            } else { continue }
            guard let (fusedLeaf, slot) = slots[leaf] else { continue }
            let fused = "transformer.\(block).\(fusedLeaf)"
            var group = found[fused] ?? Group(fused: fused, parts: [nil, nil, nil],
                                              extraRows: fusedLeaf == "linear1" ? mlpRatio * module.outFeatures : 0)
            group.parts[slot] = index
            found[fused] = group
        }
        return found.values.filter { group in
            let members = group.parts.compactMap { $0 }.map { adapter.modules[$0] }
            return Set(members.map(\.rank)).count == 1 && Set(members.map(\.inFeatures)).count == 1
        }.sorted { $0.fused < $1.fused }
    }

    /// The adapter with q, k, v groups fused; with a schedule every module gets three components per mask
    /// index (fused modules q_i, k_i, v_i; the others their component and two zero ones), since one
    /// `tlora.components_per_rank` covers the file. Nil when nothing is to be fused.
    static func stack(_ adapter: Adapter) -> (Adapter, String)? {
        guard adapter.componentsPerRank == 1, !adapter.modules.contains(where: \.isOrtho) else { return nil }
        let groups = groups(adapter)
        guard !groups.isEmpty else { return nil }
        let scheduled = adapter.schedule != nil
        var firstOf: [Int: Group] = [:], fusedAway: Set<Int> = []
        for group in groups {
            let members = group.parts.compactMap { $0 }
            firstOf[members.min()!] = group
            fusedAway.formUnion(members)
        }
        var plan: [(ModuleInfo, Source)] = []
        for (index, module) in adapter.modules.enumerated() {
            if let group = firstOf[index] {
                var info = module
                info.name = group.fused
                info.rank = 3 * module.rank
                info.outFeatures = 3 * module.outFeatures + group.extraRows
                info.alpha = Float(info.rank)
                plan.append((info, .fused(group)))
            } else if fusedAway.contains(index) {
                continue
            } else if scheduled {
                var info = module
                info.rank = 3 * module.rank
                info.alpha = Float(info.rank)
                plan.append((info, .padded(index)))
            } else {
                plan.append((module, .same(index)))
            }
        }
        var result = adapter
        result.modules = plan.map(\.0)
        let sources = plan.map(\.1), infos = plan.map(\.0)
        result.replaceSource(StackedFactors(base: adapter, make: { index in
            switch sources[index] {
            case let .same(i): return try adapter.factors(i)
            case let .padded(i):
                guard case let .lowRank(l) = try adapter.factors(i) else { throw AdapterError("\(infos[index].name): not a LoRA module") }
                return .lowRank(interleave([l], slots: 3, out: l.outFeatures, rowOffsets: [0]))
            case let .fused(group):
                var parts: [LowRank?] = []
                for slot in group.parts {
                    guard let i = slot else { parts.append(nil); continue }
                    guard case let .lowRank(l) = try adapter.factors(i) else { throw AdapterError("\(adapter.modules[i].name): not a LoRA module") }
                    parts.append(l)
                }
                let width = parts.compactMap { $0 }.first!.outFeatures
                return .lowRank(interleave(parts, slots: 3, out: infos[index].outFeatures, rowOffsets: [0, width, 2 * width]))
            }
        }))
        if scheduled { result.componentsPerRank = 3 }
        let names = groups.map { group in
            group.parts.compactMap { $0 }.map { adapter.modules[$0].name.split(separator: ".").last.map(String.init) ?? "" }.joined(separator: ", ") + " → " + group.fused
        }
        let note = "q, k, v layers stacked exactly into kohya's fused FLUX layers (\(groups.count): e.g. \(names[0]))"
            + (scheduled ? "; every module has three components per mask index (tlora.components_per_rank 3; unfused modules padded with zero components)" : "")
        return (result, note)
    }

    /// How an output module's factors are made: stacked from a group, padded, or unchanged.
    enum Source: Sendable { case fused(Group), padded(Int), same(Int) }

    /// One LoRA whose component 3c + j is part j's component c (scale folded into up), part j's rows placed
    /// from `rowOffsets[j]`; missing parts give zero components.
    static func interleave(_ parts: [LowRank?], slots: Int, out: Int, rowOffsets: [Int]) -> LowRank {
        let present = parts.compactMap { $0 }
        let r = present[0].rank, n = present[0].inFeatures, rank = slots * r
        var down = [Float](repeating: 0, count: rank * n), up = [Float](repeating: 0, count: out * rank)
        for (j, part) in parts.enumerated() {
            guard let l = part else { continue }
            let scale = l.scale
            for c in 0..<r {
                let component = slots * c + j
                for i in 0..<n { down[component * n + i] = l.down[c * n + i] }
                for o in 0..<l.outFeatures { up[(rowOffsets[j] + o) * rank + component] = l.up[o * r + c] * scale }
            }
        }
        return LowRank(down: down, up: up, rank: rank, inFeatures: n, outFeatures: out, alpha: Float(rank))
    }
}

/// Factors made per output module by a closure over another adapter's.
struct StackedFactors: FactorSource {
    let base: Adapter
    let make: @Sendable (Int) throws -> Factors
    func factors(_ index: Int) throws -> Factors { try make(index) }
}
