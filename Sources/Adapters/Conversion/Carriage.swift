/// What an output format can hold. A conversion never drops a module without being told to: modules the
/// target cannot carry make it fail, naming them, unless the caller asked to skip them.
public struct UncarriedModules: Error, CustomStringConvertible {
    public let modules: [(module: String, reason: String)]

    public var description: String {
        let shown = modules.prefix(10).map { "\($0.module) (\($0.reason))" }.joined(separator: ", ")
        let more = modules.count > 10 ? " and \(modules.count - 10) more" : ""
        return "\(modules.count) module(s) cannot be carried: \(shown)\(more); give --skip-unsupported to drop them"
    }
}

extension Converter {
    /// The modules `format` cannot hold, each with why, plus the groups of tensors the reader did not
    /// understand; in the adapter's order.
    static func uncarried(_ adapter: Adapter, to format: OutputFormat) -> [(index: Int?, module: String, reason: String)] {
        var found: [(index: Int?, module: String, reason: String)] = []
        var seen: Set<String> = []
        for key in adapter.unknownKeys {
            let module = AdapterKeys.moduleName(ofKey: key)
            if seen.insert(module).inserted { found.append((nil, module, "not \(knownModule(adapter.base.base)) tlkit knows")) }
        }
        for (index, module) in adapter.modules.enumerated() {
            if let reason = reasonUncarried(module, by: format, base: adapter.base.base) { found.append((index, module.name, reason)) }
        }
        return found
    }

    static func knownModule(_ base: BaseArchitecture?) -> String {
        guard let base, base != .sdxl else { return "an SDXL module" }
        return "a \(base.displayName) module"
    }

    static func reasonUncarried(_ module: ModuleInfo, by format: OutputFormat, base: BaseArchitecture?) -> String? {
        switch format {
        case .kohya:
            guard BaseNames.kohyaName(module.name, base: base) == nil else { return nil }
            // A part of a fused FLUX.1/SD3 projection is stacked into it (FusedLayout.fuse).
            if let (group, _) = FusedProjections.of(base)?.group(part: module.name), BaseNames.kohyaName(group.fused, base: base) != nil { return nil }
            return "kohya has no name for this module"
        case .tloraOfficial:
            return BaseNames.officialName(module.name, base: base) == nil || module.isConvolution
                ? "the official T-LoRA layout holds only UNet attention projections (to_q, to_k, to_v, to_out.0)" : nil
        case .peft:
            guard BaseNames.peftName(module.name, base: base) == nil else { return nil }
            // A fused FLUX.1/SD3 projection is split into diffusers' layers (FusedLayout.split).
            return FusedProjections.of(base)?.group(fused: module.name) != nil ? nil : "diffusers has no layer for this fused projection (kohya only)"
        case .tlora:
            return nil
        case .lycorisTlora:
            guard BaseNames.kohyaName(module.name, base: base) != nil else { return "kohya has no name for this module" }
            return module.isOrtho && !module.isConvolution ? nil : "a LyCORIS T-LoRA holds only T-LoRA (ortho) modules of linear layers"
        }
    }

    /// The adapter without the modules at `indices` (and without its unrecognised tensors).
    static func dropping(_ indices: Set<Int>, from adapter: Adapter) -> Adapter {
        let kept = adapter.modules.indices.filter { !indices.contains($0) }
        var result = adapter
        result.modules = kept.map { adapter.modules[$0] }
        result.unknownKeys = []
        result.replaceSource(SelectedFactors(base: adapter, indices: kept))
        return result
    }
}

/// Some of another adapter's modules, by index.
struct SelectedFactors: FactorSource {
    let base: Adapter
    let indices: [Int]
    func factors(_ index: Int) throws -> Factors { try base.factors(indices[index]) }
}

extension AdapterKeys {
    /// The module a tensor belongs to, by the suffix conventions of every format (the key itself when
    /// no suffix matches).
    static func moduleName(ofKey key: String) -> String {
        guard let suffix = suffixes.first(where: { key.hasSuffix($0.1) })?.1 else { return key }
        return String(key.dropLast(suffix.count))
    }
}
