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
        // Family modules (LoHa, LoKr, a LoCon with a Tucker core) report their exact rank below.
        let plain = keys.modules.filter { Families.kind(of: $0) == nil }
        identity.ranks = plain.compactMap { module -> Int? in
            let role: FactorRole? = module.tensors[.down] != nil ? .down : module.tensors[.q] != nil ? .q : nil
            return role.flatMap { module.tensors[$0] }.flatMap { file.header.tensor(named: $0)?.shape.first }
        }
        identity.alphas = alphas(keys: keys, modules: plain, file: file)
        identity.family = Families.family(of: keys, file: file)
        let lycorisTLoRA = LycorisTLoRA.isLycoris(keys)
        if lycorisTLoRA {
            identity.family = "lycoris-tlora"
            // LyCORIS replaces a missing or zero alpha by the rank.
            identity.alphas += keys.modules.compactMap { module in
                guard let q = module.tensors[.q], let rank = file.header.tensor(named: q)?.shape.first else { return nil }
                let stored = (try? FileFactors.alpha(keys: module, rank: rank, file: file, format: .kohya)) ?? nil
                return stored.flatMap { $0 == 0 ? nil : $0 } ?? Double(rank)
            }
        }
        let familyFacts = keys.modules.compactMap { Families.headerFacts($0, format: keys.format, file: file, path: path) }
        identity.ranks += familyFacts.map(\.rank)
        identity.alphas += familyFacts.compactMap(\.alpha)

        // Format, method and schedule are what the reader decides; what it would refuse becomes a note.
        let hparamsPath = OfficialHparams.locate(forWeights: path)
        let meaning = (try? AdapterInterpretation.interpret(keys: keys, file: file, path: path, strictness: .lenient,
                                                            hparamsPath: hparamsPath, hparams: { try hparamsPath.map(OfficialHparams.load) }))
            ?? AdapterInterpretation(format: keys.format, unknownKeys: keys.unknownKeys)
        for module in meaning.modules { if let layout = module.ia3 { identity.ia3Axes[layout.axis.rawValue, default: 0] += 1 } }
        identity.format = meaning.format.rawValue
        identity.hparamsPath = meaning.hparamsPath
        identity.kind = meaning.format == .tloraOfficial || meaning.format == .tlkit || lycorisTLoRA ? .tlora : .lora
        identity.method = meaning.method
        identity.schedule = meaning.schedule
        let notes = (meaning.notes + meaning.warnings).map { AdapterInterpretation.withoutPath($0, path) }
        identity.scheduleNote = notes.isEmpty ? nil : notes.joined(separator: "; ")
        if meaning.format == .tloraOfficial, let token = meaning.hparams?.placeholderToken {
            identity.trigger = [token, meaning.hparams?.className].compactMap { $0 }.joined(separator: " ")
        }
        identity.trigger = metadata["modelspec.trigger_phrase"] ?? metadataTrigger(metadata) ?? identity.trigger
        let verdict = BaseIdentification.identify(keys: keys, file: file, path: path, isOfficial: meaning.format == .tloraOfficial)
        identity.base = verdict.base?.rawValue
        identity.derivative = verdict.derivative
        identity.baseNote = verdict.note
        identity.fusedProjections = fusedProjections(keys: keys, base: verdict.base)
    }

    static func fusedProjections(keys: AdapterKeys, base: BaseArchitecture?) -> [FusedProjection] {
        guard let table = FusedProjections.of(base) else { return [] }
        return keys.modules.compactMap { module in
            guard let name = BaseNames.canonical(fileName: module.fileName, format: keys.format, base: base),
                  let group = table.group(fused: name) else { return nil }
            return FusedProjection(module: module.fileName, canonical: name, parts: group.parts)
        }
    }

    static func isTextEncoder(_ moduleName: String) -> Bool {
        moduleName.hasPrefix("lora_te") || moduleName.hasPrefix("text_encoder") || moduleName.contains("text_model.")
    }

    static func metadataTrigger(_ metadata: [String: String]) -> String? {
        guard let token = metadata["tlora.token"] else { return nil }
        return [token, metadata["tlora.class"]].compactMap { $0 }.joined(separator: " ")
    }

    /// Per-module alpha where the format has one: kohya/tlkit `.alpha` tensors, PEFT `lora_adapter_metadata`.
    static func alphas(keys: AdapterKeys, modules: [ModuleKeys], file: SafeTensorsFile) -> [Double] {
        guard [.kohya, .tlkit, .peft].contains(keys.format) else { return [] }
        return modules.compactMap { module in
            guard let down = module.tensors[.down], let rank = file.header.tensor(named: down)?.shape.first else { return nil }
            // Missing (or unreadable) alpha means alpha = rank (scale 1), as kohya loads old files.
            let stored = (try? FileFactors.alpha(keys: module, rank: rank, file: file, format: keys.format)) ?? nil
            return stored ?? Double(rank)
        }
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
        let component = ["text_encoder_3", "text_encoder_2", "text_encoder", "transformer"].first { fileName.hasPrefix($0 + ".") } ?? "unet"
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
