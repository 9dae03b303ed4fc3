import Foundation
import SafeTensors

/// Fills the adapter facts of a `FileIdentity` from grouped keys, metadata and official hparams.
enum AdapterDescription {
    static func describe(keys: AdapterKeys, file: SafeTensorsFile, path: String, into identity: inout FileIdentity) {
        let metadata = file.metadata
        identity.unsupportedVariant = keys.unsupportedVariant
        identity.unknownKeys = keys.unknownKeys
        identity.modules = keys.modules.count
        identity.textEncoderModules = keys.modules.filter { isTextEncoder($0.fileName) }.count
        identity.ranks = keys.modules.compactMap { module -> Int? in
            let role: FactorRole? = module.tensors[.down] != nil ? .down : module.tensors[.q] != nil ? .q : nil
            return role.flatMap { module.tensors[$0] }.flatMap { file.header.tensor(named: $0)?.shape.first }
        }
        identity.alphas = alphas(keys: keys, file: file)
        identity.family = Families.family(of: keys, file: file)
        let familyFacts = keys.modules.compactMap { Families.headerFacts($0, file: file, path: path) }
        identity.ranks += familyFacts.map(\.rank)
        identity.alphas += familyFacts.compactMap(\.alpha)

        var format = keys.format
        var hparams: OfficialHparams?
        if format == .attnProcs || format == .tloraOfficial, path != "-", let hparamsPath = OfficialHparams.locate(forWeights: path) {
            identity.hparamsPath = hparamsPath
            hparams = try? OfficialHparams.load(hparamsPath)
            if hparams != nil { format = .tloraOfficial }
        }
        identity.format = format.rawValue

        switch format {
        case .tloraOfficial:
            identity.kind = .tlora
            if let hparams {
                identity.method = hparams.method
                let maxRank = hparams.loraRank ?? identity.ranks.max() ?? 0
                identity.schedule = RankSchedule(maxRank: maxRank, minRank: hparams.minRank ?? 1, rankAlpha: hparams.rankAlpha ?? 1)
                if hparams.minRank == nil { identity.scheduleNote = "hparams.yml has no min_rank; the official inference assumes 1" }
                if let token = hparams.placeholderToken { identity.trigger = [token, hparams.className].compactMap { $0 }.joined(separator: " ") }
            } else {
                identity.method = "tlora"
                identity.scheduleNote = "no ../logs/hparams.yml beside checkpoint-N/: the schedule needs --min-rank (the official inference silently assumes 1)"
            }
        case .tlkit:
            identity.kind = .tlora
            identity.method = metadata["tlora.method"]
            identity.schedule = schedule(from: metadata)
        default:
            identity.kind = .lora
            identity.schedule = schedule(from: metadata)
            if identity.schedule != nil { identity.method = metadata["tlora.method"] }
        }
        identity.trigger = metadata["modelspec.trigger_phrase"] ?? metadataTrigger(metadata) ?? identity.trigger
        identity.base = base(keys: keys, file: file, metadata: metadata, isOfficial: format == .tloraOfficial)
    }

    static func isTextEncoder(_ moduleName: String) -> Bool {
        moduleName.hasPrefix("lora_te") || moduleName.hasPrefix("text_encoder") || moduleName.contains("text_model.")
    }

    /// The `tlora.*` schedule in metadata, when complete and valid.
    static func schedule(from metadata: [String: String]) -> RankSchedule? {
        guard let maxRank = metadata["tlora.max_rank"].flatMap(Int.init),
              let minRank = metadata["tlora.min_rank"].flatMap(Int.init) else { return nil }
        let schedule = RankSchedule(maxRank: maxRank, minRank: minRank,
                                    rankAlpha: metadata["tlora.rank_alpha"].flatMap(Double.init) ?? 1,
                                    timesteps: metadata["tlora.timesteps"].flatMap(Int.init) ?? 1000)
        return (try? schedule.validate()) != nil ? schedule : nil
    }

    static func metadataTrigger(_ metadata: [String: String]) -> String? {
        guard let token = metadata["tlora.token"] else { return nil }
        return [token, metadata["tlora.class"]].compactMap { $0 }.joined(separator: " ")
    }

    /// Per-module alpha where the format has one: kohya/tlkit `.alpha` tensors, PEFT `lora_adapter_metadata`.
    static func alphas(keys: AdapterKeys, file: SafeTensorsFile) -> [Double] {
        guard [.kohya, .tlkit, .peft].contains(keys.format) else { return [] }
        return keys.modules.compactMap { module in
            guard let down = module.tensors[.down], let rank = file.header.tensor(named: down)?.shape.first else { return nil }
            // Missing (or unreadable) alpha means alpha = rank (scale 1), as kohya loads old files.
            let stored = (try? FileFactors.alpha(keys: module, rank: rank, file: file, format: keys.format)) ?? nil
            return stored ?? Double(rank)
        }
    }

    static func base(keys: AdapterKeys, file: SafeTensorsFile, metadata: [String: String], isOfficial: Bool) -> String? {
        if let version = metadata["ss_base_model_version"] { return version.hasPrefix("sdxl") ? "sdxl" : nil }
        if let architecture = metadata["modelspec.architecture"] {
            return architecture.hasPrefix("stable-diffusion-xl") ? "sdxl" : nil
        }
        if metadata["tlora.version"] != nil || isOfficial { return "sdxl" }
        let names = keys.modules.map(\.fileName)
        // Two text encoders, or SGM block names in a kohya file, mean SDXL (SD 1.x/2.x have one encoder
        // and kohya writes them with diffusers block names).
        if names.contains(where: { $0.hasPrefix("lora_te2_") || $0.hasPrefix("text_encoder_2.") }) { return "sdxl" }
        if names.contains(where: { $0.hasPrefix("lora_unet_input_blocks_") || $0.hasPrefix("lora_unet_output_blocks_") || $0.hasPrefix("lora_unet_middle_block_") }) {
            return "sdxl"
        }
        // SDXL has no attention at the first level; SD 1.x/2.x do.
        let unet = names.filter { $0.contains("down_blocks") || $0.contains("up_blocks") || $0.contains("mid_block") }
        guard !unet.isEmpty else { return nil }
        let firstLevel = unet.contains { $0.contains("down_blocks.0.attentions") || $0.contains("down_blocks_0_attentions") }
        return firstLevel ? nil : "sdxl"
    }
}

/// diffusers' `lora_adapter_metadata`: LoraConfig fields per component (`unet.lora_alpha`, `unet.alpha_pattern`, …).
struct PeftMetadata {
    private var components: [String: [String: Any]] = [:]

    init(_ json: String?) {
        guard let data = json?.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
        for (key, value) in object {
            guard let dot = key.firstIndex(of: ".") else { continue }
            components[String(key[..<dot]), default: [:]][String(key[key.index(after: dot)...])] = value
        }
        // Older files nest one config per component instead of prefixing keys.
        for (key, value) in object where !key.contains(".") {
            if let nested = value as? [String: Any] { components[key, default: [:]].merge(nested) { a, _ in a } }
        }
    }

    /// PEFT's rule: an `alpha_pattern` key matches a module whose path ends with it; else `lora_alpha`; else the rank.
    func alpha(forModule fileName: String, rank: Int) -> Double {
        let component = fileName.hasPrefix("text_encoder_2.") ? "text_encoder_2"
            : fileName.hasPrefix("text_encoder.") ? "text_encoder" : "unet"
        guard let config = components[component] else { return Double(rank) }
        let path = fileName.hasPrefix(component + ".") ? String(fileName.dropFirst(component.count + 1)) : fileName
        if let patterns = config["alpha_pattern"] as? [String: Any] {
            for (pattern, value) in patterns.sorted(by: { $0.key.count > $1.key.count })
            where path == pattern || path.hasSuffix("." + pattern) {
                if let number = value as? NSNumber { return number.doubleValue }
            }
        }
        if let alpha = config["lora_alpha"] as? NSNumber { return alpha.doubleValue }
        return Double(rank)
    }
}
