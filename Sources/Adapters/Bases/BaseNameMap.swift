/// One base architecture's adapter module names, in the style of SDXL's `ModuleNames`: every module an
/// adapter may adapt has one canonical name, `<component>.<diffusers module path>`, and the kohya
/// spellings of it are looked up, never derived by splitting on `_` (docs/bases.md lists the tables).
struct BaseNameMap: Sendable {
    struct Entry {
        let canonical: String
        /// kohya spellings; the first is the one written.
        let kohya: [String]
        /// A fused projection (q, k, v in one layer, as BFL's and SAI's code have them) that diffusers'
        /// models have no layer for: written only in kohya names.
        var kohyaOnly = false
    }

    /// Components; PEFT names without a component prefix belong to the first.
    let components: [String]
    /// Components that are CLIP text models (their paths start with `text_model.`).
    let clipComponents: Set<String>
    let known: Set<String>
    let fromKohya: [String: String]
    let toKohya: [String: String]
    let kohyaOnly: Set<String>

    init(components: [String], clipComponents: Set<String>, entries: [Entry]) {
        self.components = components
        self.clipComponents = clipComponents
        known = Set(entries.map(\.canonical))
        var from: [String: String] = [:], to: [String: String] = [:]
        for entry in entries {
            for spelling in entry.kohya { from[spelling] = entry.canonical }
            if let first = entry.kohya.first { to[entry.canonical] = first }
        }
        fromKohya = from
        toKohya = to
        kohyaOnly = Set(entries.filter(\.kohyaOnly).map(\.canonical))
    }

    /// The canonical name of a module as a file names it; nil when this architecture has no such module.
    func canonical(fileName: String, format: AdapterFormat) -> String? {
        switch format {
        case .kohya:
            return fromKohya[fileName]
        case .peft, .diffusers, .tlkit:
            var name = fileName
            for suffix in [".lora_linear_layer", ".lora"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
            if name.hasPrefix("base_model.model.") { name = components[0] + "." + name.dropFirst("base_model.model.".count) }
            return normalise(name)
        case .attnProcs:
            return ModuleNames.attnProcsModule(fileName).flatMap(normalise)
        case .tloraOfficial:
            return nil  // the official T-LoRA layout is SDXL's only
        }
    }

    /// Adds the component prefix (the first component when absent) and CLIP's `text_model.` level.
    func normalise(_ name: String) -> String? {
        var (component, path) = ModuleNames.split(name)
        if !components.contains(component) {
            component = components[0]
            path = name
        }
        if clipComponents.contains(component), !path.hasPrefix("text_model.") { path = "text_model." + path }
        let canonical = "\(component).\(path)"
        return known.contains(canonical) ? canonical : nil
    }

    func kohyaName(_ canonical: String) -> String? { toKohya[canonical] }

    /// PEFT/diffusers naming: the canonical name, unless diffusers has no such layer.
    func peftName(_ canonical: String) -> String? { kohyaOnly.contains(canonical) ? nil : canonical }

    static func underscored(_ path: String) -> String { ModuleNames.underscored(path) }

    /// CLIP text-encoder layers under `component`, each with the given kohya prefixes.
    static func clipEntries(_ component: String, layers: Int, kohya prefixes: [String]) -> [Entry] {
        var entries: [Entry] = []
        for layer in 0..<layers {
            for leaf in ModuleNames.textLeaves {
                let path = "text_model.encoder.layers.\(layer).\(leaf)"
                entries.append(Entry(canonical: "\(component).\(path)", kohya: prefixes.map { $0 + underscored(path) }))
            }
        }
        return entries
    }

    /// T5 encoder blocks (FLUX.1's second, SD3's third text encoder), transformers' names.
    static func t5Entries(_ component: String, blocks: Int, kohya prefix: String) -> [Entry] {
        var entries: [Entry] = []
        for block in 0..<blocks {
            let leaves = ["layer.0.SelfAttention.q", "layer.0.SelfAttention.k", "layer.0.SelfAttention.v", "layer.0.SelfAttention.o",
                          "layer.1.DenseReluDense.wi_0", "layer.1.DenseReluDense.wi_1", "layer.1.DenseReluDense.wo"]
            for leaf in leaves {
                let path = "encoder.block.\(block).\(leaf)"
                entries.append(Entry(canonical: "\(component).\(path)", kohya: [prefix + underscored(path)]))
            }
        }
        return entries
    }
}

/// The name maps of every base, and the one place that picks between them: SDXL (and an adapter whose
/// base is unknown) keeps `ModuleNames`, so its names are exactly what they were.
enum BaseNames {
    static func map(_ base: BaseArchitecture?) -> BaseNameMap? {
        switch base {
        case .sd1: return sd1
        case .sd2: return sd2
        case .sd3: return sd3
        case .flux1: return flux1
        case .sdxl, nil: return nil
        }
    }

    static func canonical(fileName: String, format: AdapterFormat, base: BaseArchitecture?) -> String? {
        if base == .flux1, format == .attnProcs || format == .tloraOfficial { return FluxOfficialNames.canonical(fileName) }
        guard let map = map(base) else { return ModuleNames.canonical(fileName: fileName, format: format) }
        return map.canonical(fileName: fileName, format: format)
    }

    static func kohyaName(_ canonical: String, base: BaseArchitecture?) -> String? {
        guard let map = map(base) else { return ModuleNames.kohyaName(canonical) }
        return map.kohyaName(canonical)
    }

    static func peftName(_ canonical: String, base: BaseArchitecture?) -> String? {
        guard let map = map(base) else { return ModuleNames.peftName(canonical) }
        return map.peftName(canonical)
    }

    static func officialName(_ canonical: String, base: BaseArchitecture?) -> String? {
        map(base) == nil ? ModuleNames.officialName(canonical) : nil
    }

    static let sd1 = stableDiffusion(textLayers: 12)
    /// OpenCLIP ViT-H as diffusers loads it for SD 2.x: 23 of its 24 layers (the last is never used).
    static let sd2 = stableDiffusion(textLayers: 23)
    static let sd3 = BaseNames.stableDiffusion3()
    static let flux1 = BaseNames.flux()
}
