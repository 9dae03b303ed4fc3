import Foundation
import SDXL

/// All adapter module-name conversion, in one place, by lookup tables built from the module list of the
/// SDXL architecture (docs/formats.md, "Adapter module names"): canonical names are
/// `<component>.<diffusers module path>`.
public enum ModuleNames {
    /// A structure that contains SDXL base and the smaller fixtures: block indices map the same way
    /// whatever the depth, so one table serves both (deeper blocks are simply unused by small models).
    public static let superset = UNetStructure(levels: 3, layersPerBlock: 2, downDepths: [10, 10, 10], midDepth: 10, upDepths: [10, 10, 10])

    static let unetTables = UNetNames.tables(for: superset)

    static let attentionLeaves = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                                  "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
                                  "ff.net.0.proj", "ff.net.2"]
    static let textLeaves = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"]
    static let textLayers = 32

    /// Every linear module an SDXL LoRA may adapt, canonical names (UNet attention blocks and text encoders).
    public static let canonicalModules: [String] = {
        var names: [String] = []
        for pair in UNetNames.modulePairs(superset) where pair.diffusers.contains("attentions.") {
            let block = String(pair.diffusers.dropLast())
            names.append("unet.\(block).proj_in")
            names.append("unet.\(block).proj_out")
            for t in 0..<10 { for leaf in attentionLeaves { names.append("unet.\(block).transformer_blocks.\(t).\(leaf)") } }
        }
        for component in ["text_encoder", "text_encoder_2"] {
            for layer in 0..<textLayers { for leaf in textLeaves { names.append("\(component).text_model.encoder.layers.\(layer).\(leaf)") } }
        }
        return names
    }()

    /// The UNet modules outside the attention blocks that LoCon-style LoRAs adapt (kohya's conv_dim, PEFT
    /// conv targets): each resnet's convolutions and time-embedding projection, and the down/upsamplers.
    public static let resnetModules: [String] = {
        var names: [String] = []
        for pair in UNetNames.modulePairs(superset) {
            let block = String(pair.diffusers.dropLast())
            if pair.isResnet {
                names += ["conv1", "conv2", "conv_shortcut", "time_emb_proj"].map { "unet.\(block).\($0)" }
            } else if block.hasSuffix("samplers.0.conv") {
                names.append("unet.\(block)")
            }
        }
        return names
    }()

    /// kohya underscored spellings (SGM and diffusers block names) → canonical.
    static let kohyaTable: [String: String] = {
        var table: [String: String] = [:]
        for name in canonicalModules + resnetModules {
            for spelling in kohyaSpellings(name) { table[spelling] = name }
        }
        return table
    }()

    static func kohyaSpellings(_ canonical: String) -> [String] {
        let (component, path) = split(canonical)
        switch component {
        case "unet":
            var spellings = ["lora_unet_" + underscored(path)]
            if let sgm = unetTables.toSingleFile(path) { spellings.append("lora_unet_" + underscored(sgm)) }
            return spellings
        case "text_encoder":
            return ["lora_te1_" + underscored(path), "lora_te_" + underscored(path)]
        case "text_encoder_2":
            return ["lora_te2_" + underscored(path)]
        default:
            return []
        }
    }

    /// The name kohya's sd-scripts writes for SDXL: SGM block names for the UNet.
    public static func kohyaName(_ canonical: String) -> String? {
        let (component, path) = split(canonical)
        switch component {
        case "unet": return unetTables.toSingleFile(path).map { "lora_unet_" + underscored($0) }
        case "text_encoder": return "lora_te1_" + underscored(path)
        case "text_encoder_2": return "lora_te2_" + underscored(path)
        default: return nil
        }
    }

    /// The canonical name of a module as a file names it; nil when it is not an SDXL module tlkit knows.
    public static func canonical(fileName: String, format: AdapterFormat) -> String? {
        switch format {
        case .kohya:
            return kohyaTable[fileName]
        case .peft, .diffusers, .tlkit:
            var name = fileName
            for suffix in [".lora_linear_layer", ".lora"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
            if name.hasPrefix("base_model.model.") { name = "unet." + name.dropFirst("base_model.model.".count) }
            return normalise(name)
        case .attnProcs, .tloraOfficial:
            return attnProcsModule(fileName).flatMap(normalise)
        }
    }

    /// The module path an attention-processor name stands for, before the component is checked:
    /// `<path>.processor.to_q_lora` (UNet) or `…self_attn.to_q_lora` (text encoders, old diffusers).
    /// Ortho keys group as `…to_q_lora` (`.q_layer.weight`), down/up keys as `…to_q` (`_lora.down.weight`).
    static func attnProcsModule(_ fileName: String) -> String? {
        let trimmed = fileName.hasSuffix("_lora") ? String(fileName.dropLast("_lora".count)) : fileName
        guard let dot = trimmed.lastIndex(of: ".") else { return nil }
        var owner = String(trimmed[..<dot])
        let projection = String(trimmed[trimmed.index(after: dot)...])
        if owner.hasSuffix(".processor") { owner = String(owner.dropLast(".processor".count)) }
        let isText = owner.hasPrefix("text_encoder")
        let leaf: String
        switch projection {
        case "to_q": leaf = isText ? "q_proj" : "to_q"
        case "to_k": leaf = isText ? "k_proj" : "to_k"
        case "to_v": leaf = isText ? "v_proj" : "to_v"
        case "to_out": leaf = isText ? "out_proj" : "to_out.0"
        default: return nil
        }
        return "\(owner).\(leaf)"
    }

    /// Adds the component prefix (UNet when absent) and the text encoders' `text_model.` level; checks
    /// the module is one tlkit knows.
    static func normalise(_ name: String) -> String? {
        var (component, path) = split(name)
        if !["unet", "text_encoder", "text_encoder_2"].contains(component) {
            component = "unet"
            path = name
        }
        if component != "unet", !path.hasPrefix("text_model.") { path = "text_model." + path }
        let canonical = "\(component).\(path)"
        return knownModules.contains(canonical) ? canonical : nil
    }

    static let knownModules = Set(canonicalModules + resnetModules)

    /// PEFT/diffusers naming: the canonical name itself.
    public static func peftName(_ canonical: String) -> String { canonical }

    /// Official T-LoRA naming (UNet attention projections only): `<path>.processor.to_q_lora`.
    public static func officialName(_ canonical: String) -> String? {
        let (component, path) = split(canonical)
        guard component == "unet" else { return nil }
        for (leaf, projection) in [("to_q", "to_q"), ("to_k", "to_k"), ("to_v", "to_v"), ("to_out.0", "to_out")] where path.hasSuffix("." + leaf) {
            let owner = path.dropLast(leaf.count + 1)
            guard owner.hasSuffix("attn1") || owner.hasSuffix("attn2") else { return nil }
            return "\(owner).processor.\(projection)_lora"
        }
        return nil
    }

    static func split(_ name: String) -> (String, String) {
        guard let dot = name.firstIndex(of: ".") else { return (name, "") }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]))
    }

    static func underscored(_ path: String) -> String { path.replacingOccurrences(of: ".", with: "_") }
}
