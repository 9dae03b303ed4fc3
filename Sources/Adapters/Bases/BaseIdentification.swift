import Foundation
import SafeTensors

/// Decides an adapter's base model from its module names and factor shapes, then from metadata
/// (docs/bases.md, "How the base is recognised"). The tensors come first: metadata is copied from file
/// to file by merge and resize scripts, the shapes are what a loader will meet.
enum BaseIdentification {
    /// One adapted module as identification sees it.
    struct Module {
        /// The file's name with every `.` written `_`, so kohya and dotted spellings match the same patterns.
        let flat: String
        /// 1, 2, 3 for the first, second, third text encoder; 0 for kohya's SD 1.x/2.x `lora_te_`; nil for the denoiser.
        let textEncoder: Int?
        /// Input width of the adapted layer (in · kh · kw for a convolution); nil when unreadable.
        let inFeatures: Int?
        /// Dimensions of the down factor (4 for a convolution).
        let downDimensions: Int?
    }

    static func identify(keys: AdapterKeys, file: SafeTensorsFile, path: String, isOfficial: Bool) -> BaseVerdict {
        let modules = keys.modules.map { describe($0, format: keys.format, file: file, path: path) }
        let metadata = file.metadata
        let named = BaseMetadata.base(metadata)
        var verdict: BaseVerdict
        switch fromTensors(modules) {
        case let .decided(base, evidence):
            verdict = BaseVerdict(base: base, evidence: evidence)
            if let named, named.base != base {
                verdict.note = "metadata says \(named.base.displayName) (\(named.entry)), the tensors say \(base.displayName) (\(evidence))"
            }
        case let .undecided(reason):
            if let named {
                verdict = BaseVerdict(base: named.base, evidence: named.entry)
            } else if metadata["tlora.version"] != nil || isOfficial {
                verdict = BaseVerdict(base: .sdxl, evidence: "a T-LoRA file")
            } else {
                verdict = BaseVerdict(note: reason)
            }
        }
        if verdict.base == .sdxl { verdict.derivative = BaseMetadata.derivative(metadata) }
        return verdict
    }

    enum Finding: Equatable {
        case decided(BaseArchitecture, String)
        case undecided(String)
    }

    static func describe(_ module: ModuleKeys, format: AdapterFormat, file: SafeTensorsFile, path: String) -> Module {
        let name = module.fileName
        let textEncoder: Int?
        if name.hasPrefix("lora_te_") { textEncoder = 0 }
        else if name.hasPrefix("lora_te1_") || name.hasPrefix("text_encoder.") { textEncoder = 1 }
        else if name.hasPrefix("lora_te2_") || name.hasPrefix("text_encoder_2.") { textEncoder = 2 }
        else if name.hasPrefix("lora_te3_") || name.hasPrefix("text_encoder_3.") { textEncoder = 3 }
        else if AdapterKeys.bytes(of: name, contain: "text_model.") { textEncoder = 1 }
        else { textEncoder = nil }
        var inFeatures: Int?, dimensions: Int?
        if let role = [FactorRole.down, .q].first(where: { module.tensors[$0] != nil }),
           let shape = file.header.tensor(named: module.tensors[role]!)?.shape, shape.count >= 2 {
            inFeatures = shape.dropFirst().reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? $0 : $0 * $1 }
            dimensions = shape.count
        } else if let family = try? Families.shape(FamilyTensors(module: module, file: file, path: path, format: format)) {
            inFeatures = family.inFeatures
        }
        return Module(flat: name.replacingOccurrences(of: ".", with: "_"), textEncoder: textEncoder, inFeatures: inFeatures,
                      downDimensions: dimensions)
    }

    /// The rules, in order; the first that decides wins.
    static func fromTensors(_ modules: [Module]) -> Finding {
        let denoiser = modules.filter { $0.textEncoder == nil }, text = modules.filter { $0.textEncoder != nil }
        func has(_ part: String, in list: [Module]? = nil) -> Bool {
            (list ?? denoiser).contains { AdapterKeys.bytes(of: $0.flat, contain: part) }
        }
        func width(endingWith suffixes: [String], in list: [Module]? = nil) -> Int? {
            for suffix in suffixes {
                if let w = (list ?? denoiser).first(where: { $0.flat.hasSuffix(suffix) })?.inFeatures { return w }
            }
            return nil
        }

        // Transformer denoisers (MMDiT): their own block names first.
        if has("double_blocks_") || has("single_blocks_") || has("single_transformer_blocks_") {
            return .decided(.flux1, "FLUX.1 double/single blocks")
        }
        if has("joint_blocks_") { return .decided(.sd3, "SD3 joint blocks") }
        let unetBlocks = ["down_blocks_", "up_blocks_", "mid_block_", "input_blocks_", "output_blocks_", "middle_block_"]
        let isUNet = unetBlocks.contains { has($0) }
        if !isUNet, has("transformer_blocks_") {
            return transformer(denoiser, width: width(endingWith: ["attn_to_q", "attn_to_k", "attn_to_v", "attn_add_q_proj", "attn_add_k_proj",
                                                               "attn_add_v_proj", "ff_net_0_proj", "ff_context_net_0_proj", "norm1_linear"]))
        }

        // UNet denoisers: the cross-attention key/value input is the text embedding's width.
        let cross = width(endingWith: ["attn2_to_k", "attn2_to_v"])
        switch cross {
        case 768: return .decided(.sd1, "cross-attention width 768")
        case 1024: return .decided(.sd2, "cross-attention width 1024")
        case 2048: return .decided(.sdxl, "cross-attention width 2048")
        default: break
        }
        // Text encoders: T5 beside CLIP, or more than one CLIP.
        let t5 = text.filter { AdapterKeys.bytes(of: $0.flat, contain: "SelfAttention") || AdapterKeys.bytes(of: $0.flat, contain: "DenseReluDense") }
        if t5.contains(where: { $0.textEncoder == 2 }) { return .decided(.flux1, "T5 as the second text encoder") }
        let encoders = Set(text.compactMap(\.textEncoder))
        if encoders.contains(3), encoders.contains(2) { return .decided(.sd3, "three text encoders") }
        if has("lora_unet_input_blocks_") || has("lora_unet_output_blocks_") || has("lora_unet_middle_block_") {
            return .decided(.sdxl, "SGM block names, which kohya writes for SDXL only")
        }
        if encoders.contains(2) { return .decided(.sdxl, "a second CLIP text encoder") }
        let clipWidth = width(endingWith: ["self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "mlp_fc1"], in: text.filter { $0.textEncoder != 3 })
        if clipWidth == 1024 { return .decided(.sd2, "text-encoder width 1024 (OpenCLIP ViT-H)") }

        // UNet structure: SD 1.x/2.x have four levels and attention at the first; SDXL three, the first without.
        let attention = denoiser.filter { AdapterKeys.bytes(of: $0.flat, contain: "attentions_") }
        let firstLevel = has("down_blocks_0_attentions", in: attention) || has("up_blocks_3_", in: denoiser) || has("down_blocks_3_", in: denoiser)
        if firstLevel {
            if let cross { return .undecided("a UNet with attention at the first level (SD 1.x or 2.x), but cross-attention width \(cross), neither 768 nor 1024") }
            if clipWidth == 768 { return .decided(.sd1, "a UNet with attention at the first level and text-encoder width 768") }
            if let projection = attention.first(where: { $0.flat.hasSuffix("proj_in") })?.downDimensions {
                return projection == 4 ? .decided(.sd1, "a UNet with attention at the first level and a convolution proj_in")
                    : .decided(.sd2, "a UNet with attention at the first level and a linear proj_in")
            }
            return .undecided("a UNet with attention at the first level (SD 1.x or 2.x), but no cross-attention key/value, text-encoder or proj_in module tells which")
        }
        // SDXL-architecture models of other widths (small test models among them) keep SDXL's block structure.
        if isUNet { return .decided(.sdxl, "UNet blocks without attention at the first level") }
        if encoders.contains(3) { return .undecided("a T5 text encoder alone: FLUX.1 or SD3") }
        if clipWidth == 768, encoders == [0] { return .decided(.sd1, "a CLIP-L text encoder under kohya's SD 1.x prefix lora_te_") }
        if !text.isEmpty { return .undecided("text-encoder modules only, which several base models share") }
        return .undecided(modules.isEmpty ? "no adapted module" : "no module is a layer of SD 1.x, SD 2.x, SDXL, SD3 or FLUX.1")
    }

    /// MMDiT blocks named as diffusers names them (`transformer_blocks.N.attn.to_q`): FLUX.1 and SD3 share
    /// the names, so the width and SD3's context-only last block decide.
    static func transformer(_ modules: [Module], width: Int?) -> Finding {
        if width == 3072 { return .decided(.flux1, "transformer width 3072") }
        if let width, [1536, 2432].contains(width) { return .decided(.sd3, "transformer width \(width)") }
        func blocks(_ parts: [String]) -> [Int] {
            modules.compactMap { module -> Int? in
                guard parts.contains(where: { AdapterKeys.bytes(of: module.flat, contain: $0) }) else { return nil }
                return blockIndex(module.flat)
            }
        }
        if !blocks(["_attn2_"]).isEmpty { return .decided(.sd3, "blocks with a second attention (SD3.5)") }
        // SD3's last block reads the text stream but writes none back (context_pre_only): no to_add_out, no ff_context.
        let reads = blocks(["attn_add_q_proj", "attn_add_k_proj", "attn_add_v_proj"]), writes = blocks(["attn_to_add_out", "ff_context_"])
        if let lastRead = reads.max(), let lastWrite = writes.max(), lastRead > lastWrite {
            return .decided(.sd3, "a last block that only reads the text stream (context_pre_only)")
        }
        let shown = width.map { "width \($0)" } ?? "unknown width"
        return .undecided("transformer blocks of \(shown): neither FLUX.1's 3072 nor SD3's 1536 or 2432, and no single blocks or context-only last block tell them apart")
    }

    /// N in `…transformer_blocks_N_…`.
    static func blockIndex(_ flat: String) -> Int? {
        guard let range = flat.range(of: "transformer_blocks_") else { return nil }
        return Int(flat[range.upperBound...].prefix { $0.isNumber })
    }
}
