/// Exact splitting and stacking of low-rank factors along a fused layer's output rows.
///
/// A LoRA on a fused layer W = [W₁; W₂; …] (down D [R, in], up U [Σout, R]) has ΔWⱼ = s · Uⱼ · D for
/// part j, Uⱼ its rows of U: each part is a LoRA with the same down. Conversely parts ΔWⱼ = sⱼ Uⱼ Dⱼ
/// stack into one fused LoRA: down [D₁; D₂; …], up block-diagonal — or, when every part has the same
/// down, that down with the ups stacked. Nothing here approximates (docs/bases.md, "Fused projections").
enum FusedFactors {
    /// How a fused module's up factor divides among its parts.
    enum SplitPlan: Sendable, Equatable {
        /// Every part keeps the whole down and its rows of up: rank and alpha unchanged.
        case sharedDown
        /// The up factor is block-structured: part j's rows are non-zero only in `columns[j]`, columns no
        /// other part uses, so part j needs only those components (an empty list: the part is zero).
        case blocks(columns: [[Int]])
    }

    /// Block structure of `l`'s up factor for parts of `rows` output rows, found exactly (a component is a
    /// part's when any of that part's rows is non-zero in it); nil when two parts share a component.
    static func blockColumns(_ l: LowRank, rows: [Int]) -> [[Int]]? {
        var owner = [Int](repeating: -1, count: l.rank)
        var columns: [[Int]] = Array(repeating: [], count: rows.count)
        var start = 0
        for (part, count) in rows.enumerated() {
            for c in 0..<l.rank {
                var used = false
                for o in start..<(start + count) where l.up[o * l.rank + c] != 0 { used = true; break }
                guard used else { continue }
                if owner[c] != -1 { return nil }
                owner[c] = part
                columns[part].append(c)
            }
            start += count
        }
        return columns
    }

    /// Part `part` of fused factors `l` whose output rows divide as `rows`.
    static func part(_ l: LowRank, rows: [Int], part: Int, plan: SplitPlan) -> LowRank {
        let start = rows[..<part].reduce(0, +), count = rows[part]
        switch plan {
        case .sharedDown:
            return LowRank(down: l.down, up: Array(l.up[(start * l.rank)..<((start + count) * l.rank)]), rank: l.rank,
                           inFeatures: l.inFeatures, outFeatures: count, alpha: l.alpha)
        case let .blocks(columns):
            let keep = columns[part]
            guard !keep.isEmpty else {
                // A part the fused LoRA leaves unchanged: one zero component, written explicitly.
                return LowRank(down: [Float](repeating: 0, count: l.inFeatures), up: [Float](repeating: 0, count: count),
                               rank: 1, inFeatures: l.inFeatures, outFeatures: count, alpha: nil)
            }
            var down = [Float](), up = [Float](repeating: 0, count: count * keep.count)
            down.reserveCapacity(keep.count * l.inFeatures)
            for c in keep { down += l.down[(c * l.inFeatures)..<((c + 1) * l.inFeatures)] }
            for o in 0..<count { for (k, c) in keep.enumerated() { up[o * keep.count + k] = l.up[(start + o) * l.rank + c] } }
            // The scale alpha/R stays: alpha follows the rank.
            return LowRank(down: down, up: up, rank: keep.count, inFeatures: l.inFeatures, outFeatures: count,
                           alpha: l.alpha.map { $0 / Float(l.rank) * Float(keep.count) })
        }
    }

    /// How parts stack into one fused module.
    enum FusePlan: Sendable, Equatable {
        /// All contributing parts have one down (bit for bit, as after a split): that down, ups stacked.
        case sharedDown(contributing: [Int])
        /// Downs stacked in part order, ups block-diagonal: rank Σ rⱼ.
        case stacked(contributing: [Int])
        /// No part changes anything: the first present part's down and a zero up.
        case zero(from: Int)
        /// For a scheduled adapter, whose mask keeps a prefix of components: the `present` parts (one rank r)
        /// interleaved, component slots·c + k being present[k]'s component c, so mask index c keeps every
        /// part's first c components (`slots` components per mask index; scales folded into up).
        case interleaved(present: [Int], slots: Int)

        var contributing: [Int] {
            switch self {
            case let .sharedDown(c), let .stacked(c), let .interleaved(c, _): return c
            case .zero: return []
            }
        }
    }

    /// Which layout fuses `parts` (nil where the adapter has no such part); a part whose up is all zero
    /// adds nothing and takes no rank.
    static func fusePlan(_ parts: [LowRank?]) -> FusePlan? {
        let present = parts.indices.filter { parts[$0] != nil }
        guard let first = present.first else { return nil }
        let contributing = present.filter { parts[$0]!.up.contains { $0 != 0 } }
        guard let lead = contributing.first else { return .zero(from: first) }
        let down = parts[lead]!.down
        return contributing.allSatisfy({ parts[$0]!.down == down }) ? .sharedDown(contributing: contributing) : .stacked(contributing: contributing)
    }

    /// The rank and alpha the fused module gets under `plan`.
    static func fusedRankAndAlpha(_ parts: [LowRank?], plan: FusePlan) -> (rank: Int, alpha: Float?) {
        switch plan {
        case let .zero(from): return (parts[from]!.rank, nil)
        case let .interleaved(present, slots):
            let rank = slots * parts[present[0]]!.rank
            return (rank, Float(rank))
        case let .sharedDown(contributing), let .stacked(contributing):
            let rank = { () -> Int in
                if case .sharedDown = plan { return parts[contributing[0]]!.rank }
                return contributing.reduce(0) { $0 + parts[$1]!.rank }
            }()
            let scales = Set(contributing.map { parts[$0]!.scale })
            // One scale for all: kept as alpha; otherwise each part's scale goes into its block of up.
            guard scales.count == 1, let s = scales.first else { return (rank, nil) }
            return (rank, s == 1 ? nil : s * Float(rank))
        }
    }

    /// The fused factors of `parts` with output rows `rows` under `plan`.
    static func fuse(_ parts: [LowRank?], rows: [Int], inFeatures: Int, plan: FusePlan) -> LowRank {
        let out = rows.reduce(0, +)
        let (rank, alpha) = fusedRankAndAlpha(parts, plan: plan)
        // With one scale for all parts it stays in alpha and the ups are copied bit for bit; otherwise
        // each part's scale is multiplied into its rows and the fused scale is 1.
        let uniform = Set(plan.contributing.map { parts[$0]!.scale }).count <= 1
        let factor = { (l: LowRank) -> Float in uniform ? 1 : l.scale }
        var down: [Float] = [], up = [Float](repeating: 0, count: out * rank)
        let starts = rows.indices.map { rows[..<$0].reduce(0, +) }
        switch plan {
        case let .zero(from):
            down = parts[from]!.down
        case let .sharedDown(contributing):
            down = parts[contributing[0]]!.down
            for j in contributing {
                let l = parts[j]!, f = factor(l)
                for o in 0..<rows[j] { for c in 0..<rank { up[(starts[j] + o) * rank + c] = l.up[o * l.rank + c] * f } }
            }
        case let .interleaved(present, slots):
            return interleave(present.map { parts[$0]! }, rows: present.map { (start: starts[$0], count: rows[$0]) }, slots: slots,
                              out: out, inFeatures: inFeatures)
        case let .stacked(contributing):
            var column = 0
            down.reserveCapacity(rank * inFeatures)
            for j in contributing {
                let l = parts[j]!, f = factor(l)
                down += l.down
                for o in 0..<rows[j] { for c in 0..<l.rank { up[(starts[j] + o) * rank + column + c] = l.up[o * l.rank + c] * f } }
                column += l.rank
            }
        }
        return LowRank(down: down, up: up, rank: rank, inFeatures: inFeatures, outFeatures: out, alpha: alpha)
    }

    /// `parts` (one rank r) as one LoRA of slots · r components, component slots·c + k being part k's
    /// component c, with its scale folded into up (alpha = rank), part k's rows placed from rows[k].start.
    /// One part with `slots` > 1 pads a module to the components per mask index of the others.
    static func interleave(_ parts: [LowRank], rows: [(start: Int, count: Int)], slots: Int, out: Int, inFeatures n: Int) -> LowRank {
        let r = parts[0].rank, rank = slots * r
        var down = [Float](repeating: 0, count: rank * n), up = [Float](repeating: 0, count: out * rank)
        for (k, l) in parts.enumerated() {
            let scale = l.scale
            for c in 0..<r {
                let component = slots * c + k
                for i in 0..<n { down[component * n + i] = l.down[c * n + i] }
                for o in 0..<rows[k].count { up[(rows[k].start + o) * rank + component] = l.up[o * r + c] * scale }
            }
        }
        return LowRank(down: down, up: up, rank: rank, inFeatures: n, outFeatures: out, alpha: Float(rank))
    }

    /// A module outside every group padded to `slots` components per mask index (zero components between).
    static func padded(_ l: LowRank, slots: Int) -> LowRank {
        interleave([l], rows: [(0, l.outFeatures)], slots: slots, out: l.outFeatures, inFeatures: l.inFeatures)
    }
}
