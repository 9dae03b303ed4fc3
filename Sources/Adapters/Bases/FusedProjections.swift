/// The layers that BFL's and SAI's transformer code computes as one fused Linear and diffusers as
/// separate ones: FLUX.1's `img_attn.qkv` / `txt_attn.qkv` (diffusers' `to_q`, `to_k`, `to_v` and
/// `add_q_proj`, `add_k_proj`, `add_v_proj`), a FLUX.1 single block's `linear1` (q, k, v and the MLP
/// input `proj_mlp`), and SD3's `attn_qkv` of each stream (and of SD3.5 medium's second attention).
/// The fused layer's output rows are the parts' outputs one after the other, in the order listed
/// (docs/bases.md, "Fused projections").
struct FusedGroup: Sendable, Equatable {
    /// How the fused layer's output rows divide among the parts.
    enum Rows: Sendable, Equatable {
        /// Equal parts (q, k, v: each as wide as the input).
        case equal
        /// q, k and v as wide as the input, then the rest (FLUX.1's `linear1`: the MLP input, 4× the width).
        case attentionThenRest
    }

    /// Canonical name of the fused layer (`…attn.to_qkv`, `…linear1`).
    let fused: String
    /// Canonical names of the parts, in row order.
    let parts: [String]
    let rows: Rows

    /// Each part's output rows for a fused layer of `out` × `inFeatures`; nil when `out` cannot be divided so.
    func partRows(out: Int, inFeatures: Int) -> [Int]? {
        switch rows {
        case .equal:
            guard out > 0, out % parts.count == 0 else { return nil }
            return Array(repeating: out / parts.count, count: parts.count)
        case .attentionThenRest:
            let attention = parts.count - 1, rest = out - attention * inFeatures
            guard inFeatures > 0, rest > 0 else { return nil }
            return Array(repeating: inFeatures, count: attention) + [rest]
        }
    }

    /// Each part's output rows from the parts an adapter holds (`known`: part index → out); nil when they
    /// disagree with the layout. A part the adapter lacks has the width the model gives it: the input's
    /// for q, k, v; for FLUX.1's MLP input 4× the input's (its `mlp_ratio`).
    func partRows(known: [Int: Int], inFeatures: Int) -> [Int]? {
        var rows: [Int] = []
        for index in parts.indices {
            let expected: Int?
            switch self.rows {
            case .equal: expected = known.values.first
            case .attentionThenRest: expected = index < parts.count - 1 ? inFeatures : known[index] ?? 4 * inFeatures
            }
            guard let width = expected, width > 0 else { return nil }
            if let have = known[index], have != width { return nil }
            rows.append(width)
        }
        return rows
    }
}

/// The fused groups of each base, looked up by the fused name or by a part's name.
struct FusedProjections: Sendable {
    let groups: [FusedGroup]
    let byFused: [String: Int]
    let byPart: [String: (group: Int, part: Int)]

    init(_ groups: [FusedGroup]) {
        self.groups = groups
        var fused: [String: Int] = [:], part: [String: (Int, Int)] = [:]
        for (g, group) in groups.enumerated() {
            fused[group.fused] = g
            for (p, name) in group.parts.enumerated() { part[name] = (g, p) }
        }
        byFused = fused
        byPart = part
    }

    func group(fused name: String) -> FusedGroup? { byFused[name].map { groups[$0] } }

    func group(part name: String) -> (group: FusedGroup, part: Int)? { byPart[name].map { (groups[$0.group], $0.part) } }

    static func of(_ base: BaseArchitecture?) -> FusedProjections? {
        switch base {
        case .flux1: return flux1
        case .sd3: return sd3
        default: return nil
        }
    }

    static let flux1: FusedProjections = {
        var groups: [FusedGroup] = []
        for i in 0..<19 {
            let a = "transformer.transformer_blocks.\(i).attn."
            groups.append(FusedGroup(fused: a + "to_qkv", parts: [a + "to_q", a + "to_k", a + "to_v"], rows: .equal))
            groups.append(FusedGroup(fused: a + "to_added_qkv", parts: [a + "add_q_proj", a + "add_k_proj", a + "add_v_proj"], rows: .equal))
        }
        for i in 0..<38 {
            let s = "transformer.single_transformer_blocks.\(i)."
            groups.append(FusedGroup(fused: s + "linear1", parts: [s + "attn.to_q", s + "attn.to_k", s + "attn.to_v", s + "proj_mlp"],
                                     rows: .attentionThenRest))
        }
        return FusedProjections(groups)
    }()

    static let sd3: FusedProjections = {
        var groups: [FusedGroup] = []
        for i in 0..<38 {
            let b = "transformer.transformer_blocks.\(i)."
            for attention in ["attn", "attn2"] {
                let a = b + attention + "."
                groups.append(FusedGroup(fused: a + "to_qkv", parts: [a + "to_q", a + "to_k", a + "to_v"], rows: .equal))
            }
            let a = b + "attn."
            groups.append(FusedGroup(fused: a + "to_added_qkv", parts: [a + "add_q_proj", a + "add_k_proj", a + "add_v_proj"], rows: .equal))
        }
        return FusedProjections(groups)
    }()
}
