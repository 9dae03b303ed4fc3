import Foundation

/// The `__metadata__` each output format carries (docs/formats.md, "Metadata").
enum AdapterMetadata {
    static let trainingFacts = ["tlora.token", "tlora.class", "tlora.prompt", "tlora.steps", "tlora.seed", "tlora.init",
                                "tlora.base_model_sha256", "tlora.baked_at_timestep", "tlora.merged_from"]

    static func build(_ adapter: Adapter, format: OutputFormat, dataSHA256: String, options: WriteOptions) -> [String: String] {
        if format == .tloraOfficial { return ["format": "pt"] }
        var m: [String: String] = [:]
        for key in trainingFacts { if let value = adapter.metadata[key] { m[key] = value } }
        if let schedule = adapter.schedule {
            m["tlora.version"] = "1"
            m["tlora.method"] = adapter.scheduledMethod.rawValue
            m["tlora.max_rank"] = String(schedule.maxRank)
            m["tlora.min_rank"] = String(schedule.minRank)
            m["tlora.rank_alpha"] = number(schedule.rankAlpha)
            m["tlora.timesteps"] = String(schedule.timesteps)
            m["tlora.components_per_rank"] = String(adapter.componentsPerRank)
            m["tlora.data_sha256"] = dataSHA256
        } else if format == .tlora {
            m["tlora.version"] = "1"
            m["tlora.method"] = (adapter.method ?? .lora).rawValue
        }
        // ModelSpec 1.0.1 (MUST keys, then what is known).
        m["modelspec.sai_model_spec"] = "1.0.1"
        // The base's own names; an unknown base is written as SDXL, as before bases were told apart.
        let base = adapter.base.base ?? .sdxl
        m["modelspec.architecture"] = base == .sdxl ? base.modelSpecArchitecture : sameBase(adapter, "modelspec.architecture") ?? base.modelSpecArchitecture
        m["modelspec.implementation"] = base.modelSpecImplementation
        m["modelspec.title"] = options.title ?? adapter.metadata["modelspec.title"] ?? "tlkit adapter"
        m["modelspec.resolution"] = adapter.metadata["modelspec.resolution"] ?? base.resolution
        if [.sd1, .sd2, .sdxl].contains(base) { m["modelspec.prediction_type"] = "epsilon" }
        m["modelspec.hash_sha256"] = "0x" + dataSHA256
        if let trigger = options.trigger ?? adapter.metadata["modelspec.trigger_phrase"] ?? defaultTrigger(adapter) {
            m["modelspec.trigger_phrase"] = trigger
        }
        switch format {
        case .kohya:
            let ranks = Set(adapter.modules.map(\.rank))
            m["ss_v2"] = base == .sd2 ? "True" : "False"
            m["ss_base_model_version"] = base == .sdxl ? base.kohyaVersion : sameBase(adapter, "ss_base_model_version") ?? base.kohyaVersion
            m["ss_network_module"] = "networks.lora"
            m["ss_network_dim"] = ranks.count == 1 ? String(ranks.first!) : "Dynamic"
            m["ss_network_alpha"] = uniformAlpha(adapter).map(number) ?? "Dynamic"
            m["sshs_model_hash"] = dataSHA256
        case .peft:
            m["format"] = "pt"
            m["lora_adapter_metadata"] = peftConfig(adapter)
        default:
            break
        }
        return m
    }

    /// The input's value of `key` when it names the same base (it may say more: `sd_v2_v`, `flux-1-schnell/lora`).
    static func sameBase(_ adapter: Adapter, _ key: String) -> String? {
        guard let value = adapter.metadata[key], BaseMetadata.base([key: value])?.base == adapter.base.base else { return nil }
        return value
    }

    static func defaultTrigger(_ adapter: Adapter) -> String? {
        adapter.metadata["tlora.token"].map { [$0, adapter.metadata["tlora.class"]].compactMap { $0 }.joined(separator: " ") }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// Alpha of every module when they agree (written modules are low-rank), else nil.
    static func uniformAlpha(_ adapter: Adapter) -> Double? {
        let alphas = Set(adapter.modules.map { Double($0.alpha ?? Float($0.rank)) })
        return alphas.count == 1 ? alphas.first : nil
    }

    /// diffusers' `lora_adapter_metadata`: LoraConfig fields per component, keys prefixed by component.
    static func peftConfig(_ adapter: Adapter) -> String {
        var config: [String: Any] = [:]
        let byComponent = Dictionary(grouping: adapter.modules.indices, by: { adapter.modules[$0].component })
        for (component, indices) in byComponent {
            let entries = indices.map { i -> (path: String, rank: Int, alpha: Double) in
                let module = adapter.modules[i]
                // Pattern keys are matched against the loaded model's module names, which current
                // transformers gives without the `text_model.` level; a suffix match works for both.
                var path = String(module.name.dropFirst(component.count + 1))
                if path.hasPrefix("text_model.") { path = String(path.dropFirst("text_model.".count)) }
                return (path, module.rank, Double(module.alpha ?? Float(module.rank)))
            }
            let rank = mostCommon(entries.map(\.rank))
            let alpha = mostCommon(entries.map(\.alpha))
            config["\(component).r"] = rank
            config["\(component).lora_alpha"] = alpha
            config["\(component).rank_pattern"] = Dictionary(uniqueKeysWithValues: entries.filter { $0.rank != rank }.map { ($0.path, $0.rank) })
            config["\(component).alpha_pattern"] = Dictionary(uniqueKeysWithValues: entries.filter { $0.alpha != alpha }.map { ($0.path, $0.alpha) })
            // Leaf names, as diffusers writes them (`to_q`, `to_out.0`, `q_proj`).
            config["\(component).target_modules"] = Array(Set(entries.map { leafName($0.path) })).sorted()
            config["\(component).peft_type"] = "LORA"
            config["\(component).bias"] = "none"
            config["\(component).lora_dropout"] = 0.0
            config["\(component).use_dora"] = false
            config["\(component).use_rslora"] = false
            config["\(component).init_lora_weights"] = true
            config["\(component).fan_in_fan_out"] = false
        }
        let data = (try? JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func leafName(_ path: String) -> String {
        let parts = path.split(separator: ".")
        if parts.count >= 2, let last = parts.last, Int(last) != nil { return parts.suffix(2).joined(separator: ".") }
        return parts.last.map(String.init) ?? path
    }

    static func mostCommon<T: Hashable & Comparable>(_ values: [T]) -> T {
        let counts = Dictionary(values.map { ($0, 1) }, uniquingKeysWith: +)
        return counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }!.key
    }
}
