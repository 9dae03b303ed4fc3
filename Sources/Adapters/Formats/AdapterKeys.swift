import SafeTensors

/// The tensors of one adapted module, as named in the file.
public struct ModuleKeys: Sendable {
    /// The module's name as the file spells it (e.g. `lora_unet_input_blocks_4_1_…_to_q`).
    public let fileName: String
    public var tensors: [FactorRole: String]
}

/// A file's tensors grouped into adapted modules, by the suffix conventions of each format
/// (docs/formats.md, "Adapter formats").
public struct AdapterKeys: Sendable {
    public let format: AdapterFormat
    public let modules: [ModuleKeys]
    /// Tensors that belong to no module this format defines.
    public let unknownKeys: [String]
    /// A recognised variant the reader refuses (OFT; DoRA and IA3 unless the caller has the base weights),
    /// named for messages.
    public let unsupportedVariant: String?

    /// Suffix → role, per format; the first matching suffix wins.
    static let suffixes: [(AdapterFormat, String, FactorRole)] = [
        (.tlkit, ".tlora.q", .q), (.tlkit, ".tlora.p", .p), (.tlkit, ".tlora.lambda", .lambda),
        (.tlkit, ".tlora.q0", .q0), (.tlkit, ".tlora.p0", .p0), (.tlkit, ".tlora.lambda0", .lambda0),
        (.tlkit, ".tlora.down", .down), (.tlkit, ".tlora.up", .up), (.tlkit, ".tlora.alpha", .alpha),
        (.tloraOfficial, ".q_layer.weight", .q), (.tloraOfficial, ".p_layer.weight", .p),
        (.tloraOfficial, ".lambda_layer", .lambda), (.tloraOfficial, ".base_q.weight", .q0),
        (.tloraOfficial, ".base_p.weight", .p0), (.tloraOfficial, ".base_lambda", .lambda0),
        (.kohya, ".lora_down.weight", .down), (.kohya, ".lora_up.weight", .up), (.kohya, ".alpha", .alpha),
        (.peft, ".lora_A.weight", .down), (.peft, ".lora_B.weight", .up),
        (.peft, ".lora_A.default.weight", .down), (.peft, ".lora_B.default.weight", .up),
        (.diffusers, ".lora.down.weight", .down), (.diffusers, ".lora.up.weight", .up),
        (.diffusers, ".lora_linear_layer.down.weight", .down), (.diffusers, ".lora_linear_layer.up.weight", .up),
        (.attnProcs, "_lora.down.weight", .down), (.attnProcs, "_lora.up.weight", .up),
        // LyCORIS LoHa / LoKr and Tucker cores, read through Families/. PEFT spells these factors the same
        // way under its own module names; `group` tells the two apart by the module name.
        (.kohya, ".hada_w1_a", .hadaW1a), (.kohya, ".hada_w1_b", .hadaW1b), (.kohya, ".hada_w2_a", .hadaW2a), (.kohya, ".hada_w2_b", .hadaW2b),
        (.kohya, ".lokr_w1", .lokrW1), (.kohya, ".lokr_w1_a", .lokrW1a), (.kohya, ".lokr_w1_b", .lokrW1b),
        (.kohya, ".lokr_w2", .lokrW2), (.kohya, ".lokr_w2_a", .lokrW2a), (.kohya, ".lokr_w2_b", .lokrW2b),
        (.kohya, ".hada_t1", .hadaT1), (.kohya, ".hada_t2", .hadaT2), (.kohya, ".lokr_t2", .lokrT2),
        (.kohya, ".lora_mid.weight", .mid),
        // DoRA magnitude vectors (Families/DoRA.swift): read only where the base weight is at hand.
        (.kohya, ".dora_scale", .magnitude), (.peft, ".lora_magnitude_vector", .magnitude),
        // (IA)³ (Families/IA3.swift): LyCORIS' axis flag, and PEFT's vector (as saved, or under its adapter name).
        (.kohya, ".on_input", .ia3OnInput), (.peft, ".ia3_l", .ia3Vector), (.peft, ".ia3_l.default", .ia3Vector),
    ]

    static let lycorisMarkers = ["oft_blocks", "oft_diag"]
    /// Roles whose suffixes LyCORIS (kohya module names) and PEFT (its own module names) share.
    static let familyRoles: Set<FactorRole> = [.hadaW1a, .hadaW1b, .hadaW2a, .hadaW2b, .hadaT1, .hadaT2,
                                               .lokrW1, .lokrW1a, .lokrW1b, .lokrW2, .lokrW2a, .lokrW2b, .lokrT2]
    static let doraSuffixes = [".dora_scale", ".lora_magnitude_vector"]
    static let ia3Suffixes = [".on_input", ".ia3_l", ".ia3_l.default"]

    /// LyCORIS' (IA)³ vector is `<kohya name>.weight`: a `lora_` name with no other dot (every other
    /// LyCORIS `.weight` tensor sits one level deeper, `lora_down.weight`). Whether its module is (IA)³
    /// is settled by its `on_input` flag (`IA3.describe`).
    static func lycorisIA3Vector(_ name: String) -> (AdapterFormat, String, FactorRole)? {
        guard name.hasPrefix("lora_"), name.hasSuffix(".weight"), name.dropLast(".weight".count).allSatisfy({ $0 != "." }) else { return nil }
        return (.kohya, ".weight", .ia3Vector)
    }

    /// Whether `text` contains `part`, compared byte by byte: Foundation's `contains` (through CFString)
    /// took most of the time of identifying a LoRA's hundreds of tensor names.
    static func bytes(of text: String, contain part: String) -> Bool {
        var text = text, part = part
        return text.withUTF8 { t in
            part.withUTF8 { p in
                guard !p.isEmpty else { return true }
                guard t.count >= p.count else { return false }
                for start in 0...(t.count - p.count) where t[start] == p[0] {
                    if (1..<p.count).allSatisfy({ t[start + $0] == p[$0] }) { return true }
                }
                return false
            }
        }
    }

    /// Groups the tensors of `file`; nil when no tensor looks like an adapter factor.
    public static func group(_ tensorNames: [String]) -> AdapterKeys? {
        var byFormat: [AdapterFormat: [String: ModuleKeys]] = [:]
        var order: [AdapterFormat: [String]] = [:]
        var unmatched: [String] = []
        var unsupported: String?
        for name in tensorNames {
            if lycorisMarkers.contains(where: { AdapterKeys.bytes(of: name, contain: $0) }) {
                unsupported = "OFT"
                unmatched.append(name)
                continue
            }
            // DoRA is grouped with its low-rank part; a variant nothing reads outranks it in messages.
            if unsupported == nil, doraSuffixes.contains(where: { name.hasSuffix($0) }) { unsupported = "DoRA" }
            if unsupported == nil, ia3Suffixes.contains(where: { name.hasSuffix($0) }) { unsupported = "IA3" }
            // LyCORIS T-LoRA shares the official layout's suffixes under kohya module names (no dots).
            guard let (suffixFormat, suffix, role) = LycorisTLoRA.grouping(name) ?? suffixes.first(where: { name.hasSuffix($0.1) })
                    ?? lycorisIA3Vector(name) else {
                unmatched.append(name)
                continue
            }
            let module = String(name.dropLast(suffix.count))
            // kohya names start `lora_`; PEFT's LoHa/LoKr (`LoHaConfig`, `LoKrConfig`) use module paths.
            let isPEFTFamily = suffixFormat == .kohya && familyRoles.contains(role) && !module.hasPrefix("lora_")
            let format = isPEFTFamily ? AdapterFormat.peft : suffixFormat
            if byFormat[format]?[module] == nil { order[format, default: []].append(module) }
            byFormat[format, default: [:]][module, default: ModuleKeys(fileName: module, tensors: [:])].tensors[role] = name
        }
        // The format with the most modules wins; others' keys count as unknown.
        guard let (format, modules) = byFormat.max(by: { $0.value.count < $1.value.count }) else {
            return unsupported.map { AdapterKeys(format: .kohya, modules: [], unknownKeys: unmatched, unsupportedVariant: $0) }
        }
        for (other, entries) in byFormat where other != format {
            unmatched += entries.values.flatMap { $0.tensors.values }
        }
        // kohya `.alpha` keys for modules that exist only in another format are foreign too.
        let ordered = order[format]!.map { modules[$0]! }
        return AdapterKeys(format: format, modules: ordered, unknownKeys: unmatched.sorted(), unsupportedVariant: unsupported)
    }
}
