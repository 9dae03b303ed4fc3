/// Splits an adapter's fused FLUX.1/SD3 modules into diffusers' separate ones, or stacks separate ones
/// into the fused layers BFL's and SAI's code (and so kohya's files) have — exactly, module by module.
/// Factors are read once to choose each module's layout (so ranks are known before anything is written)
/// and again, lazily, when the result is written: memory stays one module's worth.
public enum FusedLayout {
    /// The regrouped adapter, and for each of its modules the indices of the modules it came from.
    public struct Result: Sendable {
        public var adapter: Adapter
        public var origins: [[Int]]
        public var notes: [String]
    }

    /// What each output module is computed from.
    enum Recipe: Sendable {
        case same(Int)
        case part(of: Int, rows: [Int], part: Int, plan: FusedFactors.SplitPlan)
        case fused(parts: [Int?], rows: [Int], inFeatures: Int, plan: FusedFactors.FusePlan)
        /// A module outside the groups with zero components between its own (`FusedFactors.padded`).
        case padded(Int, slots: Int)
    }

    /// Whether the adapter has a fused module (for `split`) or a part module (for `fuse`).
    public static func hasFused(_ adapter: Adapter) -> Bool {
        guard let table = FusedProjections.of(adapter.base.base) else { return false }
        return adapter.modules.contains { table.group(fused: $0.name) != nil }
    }

    public static func hasParts(_ adapter: Adapter) -> Bool {
        guard let table = FusedProjections.of(adapter.base.base) else { return false }
        return adapter.modules.contains { table.group(part: $0.name) != nil }
    }

    /// Every fused module as its parts. `keepComponents` (for scheduled adapters, and wherever component
    /// indices must keep their meaning) gives every part the whole down; otherwise a block-structured up is
    /// split into its blocks, as diffusers' kohya loader does.
    public static func split(_ adapter: Adapter, keepComponents: Bool = false) throws -> Result {
        guard let table = FusedProjections.of(adapter.base.base) else { return Result(adapter: adapter, origins: adapter.modules.indices.map { [$0] }, notes: []) }
        let keep = keepComponents || adapter.schedule != nil
        let present = Set(adapter.modules.map(\.name))
        var modules: [ModuleInfo] = [], recipes: [Recipe] = [], origins: [[Int]] = []
        var splitCount = 0, blockCount = 0, zeroParts: [String] = []
        for (index, module) in adapter.modules.enumerated() {
            guard let group = table.group(fused: module.name) else {
                modules.append(module); recipes.append(.same(index)); origins.append([index])
                continue
            }
            if let clash = group.parts.first(where: present.contains) {
                throw AdapterError("\(module.name) and \(clash) are both in the adapter: a fused projection and one of its parts cannot be regrouped into one layout")
            }
            guard !module.isConvolution, module.magnitudeAxis == nil, module.ia3 == nil else {
                throw AdapterError("\(module.name): only a plain low-rank module on a fused projection can be split")
            }
            guard let rows = group.partRows(out: module.outFeatures, inFeatures: module.inFeatures) else {
                throw AdapterError("\(module.name): \(module.outFeatures) output rows do not divide into \(group.parts.map { String($0.split(separator: ".").last ?? "") }.joined(separator: ", ")) for input width \(module.inFeatures)")
            }
            guard case let .lowRank(l) = try adapter.factors(index) else {
                throw AdapterError("\(module.name): an ortho module must be folded before it is split")
            }
            var plan = FusedFactors.SplitPlan.sharedDown
            if !keep, let columns = FusedFactors.blockColumns(l, rows: rows) {
                plan = .blocks(columns: columns)
                blockCount += 1
            }
            splitCount += 1
            for (p, name) in group.parts.enumerated() {
                var info = module
                info.name = name
                info.outFeatures = rows[p]
                let piece = FusedFactors.part(l, rows: rows, part: p, plan: plan)
                info.rank = piece.rank
                info.alpha = piece.alpha
                if !piece.up.contains(where: { $0 != 0 }) { zeroParts.append(name) }
                modules.append(info)
                recipes.append(.part(of: index, rows: rows, part: p, plan: plan))
                origins.append([index])
            }
        }
        var notes: [String] = []
        if splitCount > 0 {
            notes.append("\(splitCount) fused projection(s) split into their parts exactly (\(blockCount) block-diagonal, split into their blocks; the rest keep the whole down and rank)")
        }
        if !zeroParts.isEmpty {
            notes.append("\(zeroParts.count) part(s) the fused LoRA leaves unchanged are written with zero factors: \(listed(zeroParts))")
        }
        return Result(adapter: regrouped(adapter, modules: modules, recipes: recipes), origins: origins, notes: notes)
    }

    /// Every group of part modules as its fused module; parts the adapter lacks are zero rows of the fused
    /// up (the adapter does not change them). A scheduled adapter's mask keeps a prefix of components, so
    /// parts with different downs are interleaved rather than stacked (`FusePlan.interleaved`, one rank
    /// for all parts), and every other module is padded to the same number of components per mask index
    /// — one `tlora.components_per_rank` covers a file.
    public static func fuse(_ adapter: Adapter) throws -> Result {
        guard let table = FusedProjections.of(adapter.base.base) else { return Result(adapter: adapter, origins: adapter.modules.indices.map { [$0] }, notes: []) }
        let present = Set(adapter.modules.map(\.name))
        var members: [String: [Int?]] = [:]
        for (index, module) in adapter.modules.enumerated() {
            guard let (group, part) = table.group(part: module.name) else { continue }
            if present.contains(group.fused) {
                throw AdapterError("\(group.fused) and \(module.name) are both in the adapter: a fused projection and one of its parts cannot be regrouped into one layout")
            }
            guard !module.isConvolution, module.magnitudeAxis == nil, module.ia3 == nil else {
                throw AdapterError("\(module.name): only plain low-rank modules can be stacked into \(group.fused)")
            }
            members[group.fused, default: Array(repeating: nil, count: group.parts.count)][part] = index
        }
        // Each group read once: its parts' factors, output rows and plan.
        struct Fused { let indices: [Int?], parts: [LowRank?], rows: [Int], width: Int, partNames: [String]; var plan: FusedFactors.FusePlan }
        var groups: [String: Fused] = [:]
        for module in adapter.modules {
            guard let (group, _) = table.group(part: module.name), groups[group.fused] == nil else { continue }
            let indices = members[group.fused]!
            var parts: [LowRank?] = []
            for i in indices {
                guard let i else { parts.append(nil); continue }
                guard case let .lowRank(l) = try adapter.factors(i) else {
                    throw AdapterError("\(adapter.modules[i].name): an ortho module must be folded before it is stacked")
                }
                parts.append(l)
            }
            let widths = Set(indices.compactMap { $0.map { adapter.modules[$0].inFeatures } })
            guard widths.count == 1, let width = widths.first else {
                throw AdapterError("the parts of \(group.fused) have different input widths (\(widths.sorted().map(String.init).joined(separator: ", ")))")
            }
            let known = Dictionary(uniqueKeysWithValues: indices.enumerated().compactMap { p, i in i.map { (p, adapter.modules[$0].outFeatures) } })
            guard let rows = group.partRows(known: known, inFeatures: width) else {
                throw AdapterError("the parts of \(group.fused) have output widths \(known.sorted { $0.key < $1.key }.map { "\($0.value)" }.joined(separator: ", ")) that do not fit its layout")
            }
            groups[group.fused] = Fused(indices: indices, parts: parts, rows: rows, width: width, partNames: group.parts, plan: FusedFactors.fusePlan(parts)!)
        }
        let slots = try interleavingSlots(adapter, groups: groups.mapValues { ($0.parts, $0.plan) })
        if slots > 1 {
            for (name, group) in groups {
                groups[name]!.plan = .interleaved(present: group.parts.indices.filter { group.parts[$0] != nil }, slots: slots)
            }
        }
        var modules: [ModuleInfo] = [], recipes: [Recipe] = [], origins: [[Int]] = []
        var done: Set<String> = [], fusedCount = 0, sharedCount = 0, missing: [String] = []
        for (index, module) in adapter.modules.enumerated() {
            guard let (tableGroup, _) = table.group(part: module.name) else {
                if slots > 1 {
                    guard !module.isOrtho, module.magnitudeAxis == nil, module.ia3 == nil else {
                        throw AdapterError("\(module.name): only plain low-rank modules can be padded to \(slots) components per mask index")
                    }
                    var info = module
                    info.rank = slots * module.rank
                    info.alpha = Float(info.rank)
                    modules.append(info); recipes.append(.padded(index, slots: slots)); origins.append([index])
                } else {
                    modules.append(module); recipes.append(.same(index)); origins.append([index])
                }
                continue
            }
            guard done.insert(tableGroup.fused).inserted else { continue }
            let group = groups[tableGroup.fused]!
            if case .sharedDown = group.plan, group.plan.contributing.count > 1 { sharedCount += 1 }
            let (rank, alpha) = FusedFactors.fusedRankAndAlpha(group.parts, plan: group.plan)
            var info = adapter.modules[group.indices.compactMap { $0 }[0]]
            info.name = tableGroup.fused
            info.rank = rank
            info.alpha = alpha
            info.inFeatures = group.width
            info.outFeatures = group.rows.reduce(0, +)
            modules.append(info)
            recipes.append(.fused(parts: group.indices, rows: group.rows, inFeatures: group.width, plan: group.plan))
            origins.append(group.indices.compactMap { $0 })
            fusedCount += 1
            for (p, i) in group.indices.enumerated() where i == nil { missing.append(group.partNames[p]) }
        }
        var notes: [String] = []
        if fusedCount > 0 {
            notes.append(slots > 1
                ? "\(fusedCount) group(s) of separate projections stacked into fused ones exactly, their components interleaved so the schedule's mask keeps its meaning: every module has \(slots) components per mask index (tlora.components_per_rank \(slots); modules outside the groups padded with zero components)"
                : "\(fusedCount) group(s) of separate projections stacked into fused ones exactly (\(sharedCount) sharing one down, kept at its rank; the rest with stacked downs and block-diagonal ups)")
        }
        if !missing.isEmpty {
            notes.append("\(missing.count) part(s) absent from the adapter are zero rows of their fused module: \(listed(missing))")
        }
        var result = regrouped(adapter, modules: modules, recipes: recipes)
        if slots > 1 { result.componentsPerRank = slots }
        return Result(adapter: result, origins: origins, notes: notes)
    }

    /// Components per mask index the fused adapter needs: 1 unless the adapter is scheduled and some group's
    /// parts have different downs (stacking them would reorder components), then the most parts a group has,
    /// interleaved. Throws where interleaving cannot keep the mask's meaning.
    static func interleavingSlots(_ adapter: Adapter, groups: [String: (parts: [LowRank?], plan: FusedFactors.FusePlan)]) throws -> Int {
        guard adapter.schedule != nil else { return 1 }
        let stacked = groups.filter { if case .stacked = $0.value.plan { return $0.value.plan.contributing.count > 1 }; return false }
        guard let first = stacked.keys.sorted().first else { return 1 }
        guard adapter.componentsPerRank == 1 else {
            throw AdapterError("\(first): its parts have different downs, and this scheduled adapter already has \(adapter.componentsPerRank) components per mask index, so they cannot be interleaved (bake it first with --at-timestep T)")
        }
        for (name, group) in groups.sorted(by: { $0.key < $1.key }) where Set(group.parts.compactMap { $0?.rank }).count > 1 {
            throw AdapterError("\(name): its parts have different downs and ranks, so a scheduled adapter's components cannot be interleaved (bake it first with --at-timestep T)")
        }
        return groups.values.map { $0.parts.compactMap { $0 }.count }.max() ?? 1
    }

    /// Adapters of one base whose layouts differ (one fused, another separate: a kohya and a PEFT FLUX.1
    /// LoRA) with every fused module split, so `merge` and `diff` pair the same modules. Parts keep the
    /// whole down (component indices keep their meaning); adapters already alike are returned unchanged.
    public static func commonLayout(_ adapters: [Adapter]) throws -> [Adapter] {
        guard adapters.contains(where: hasFused), adapters.contains(where: hasParts) else { return adapters }
        return try adapters.map { adapter in
            guard hasFused(adapter) else { return adapter }
            // Ortho modules are folded first (exact; the mask keeps its meaning with twice the components).
            let lowRank = adapter.modules.contains(where: \.isOrtho) ? Converter.foldOrtho(adapter) : adapter
            return try split(lowRank, keepComponents: true).adapter
        }
    }

    static func regrouped(_ adapter: Adapter, modules: [ModuleInfo], recipes: [Recipe]) -> Adapter {
        var result = adapter
        result.modules = modules
        result.unknownKeys = adapter.unknownKeys
        result.replaceSource(RegroupedFactors(base: adapter, recipes: recipes))
        return result
    }

    static func listed(_ names: [String]) -> String {
        names.prefix(6).joined(separator: ", ") + (names.count > 6 ? " and \(names.count - 6) more" : "")
    }
}

/// Factors of a regrouped adapter, computed from the source's when asked for.
struct RegroupedFactors: FactorSource {
    let base: Adapter
    let recipes: [FusedLayout.Recipe]

    func factors(_ index: Int) throws -> Factors {
        switch recipes[index] {
        case let .same(i):
            return try base.factors(i)
        case let .part(of, rows, part, plan):
            guard case let .lowRank(l) = try base.factors(of) else { throw AdapterError("\(base.modules[of].name): not a low-rank module") }
            return .lowRank(FusedFactors.part(l, rows: rows, part: part, plan: plan))
        case let .fused(parts, rows, inFeatures, plan):
            let factors = try parts.map { i -> LowRank? in
                guard let i else { return nil }
                guard case let .lowRank(l) = try base.factors(i) else { throw AdapterError("\(base.modules[i].name): not a low-rank module") }
                return l
            }
            return .lowRank(FusedFactors.fuse(factors, rows: rows, inFeatures: inFeatures, plan: plan))
        case let .padded(i, slots):
            guard case let .lowRank(l) = try base.factors(i) else { throw AdapterError("\(base.modules[i].name): not a low-rank module") }
            return .lowRank(FusedFactors.padded(l, slots: slots))
        }
    }

    func dora(_ index: Int) throws -> DoRAFactors? {
        guard case let .same(i) = recipes[index] else { return nil }
        return try base.dora(i)
    }

    func ia3(_ index: Int) throws -> IA3Factors? {
        guard case let .same(i) = recipes[index] else { return nil }
        return try base.ia3(i)
    }
}
