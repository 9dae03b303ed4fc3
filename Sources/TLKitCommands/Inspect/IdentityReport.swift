import Adapters
import JSONOutput
import SafeTensors
import SDXL

/// Renders a `FileIdentity` as inspect's JSON object or as a short human summary.
enum IdentityReport {
    static func json(_ id: FileIdentity, tensors: [TensorInfo]?) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("path", .string(id.path)),
            ("kind", .string(id.kind.rawValue)),
            ("format", .optional(id.format)),
            ("base", .optional(id.base)),
        ]
        // Only when there is something to say, so SDXL reports stay as they were.
        if let derivative = id.derivative { fields.append(("derivative", .string(derivative))) }
        if let note = id.baseNote { fields.append(("base_note", .string(note))) }
        fields += [
            ("dtypes", .object(id.dtypes.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("parameters", .int(id.parameters)),
            ("tensors", .int(id.tensorCount)),
        ]
        if let components = id.components {
            fields.append(("components", .object(Component.allCases.map { ($0.rawValue, .bool(components[$0] ?? false)) })))
            fields.append(("config", id.unetConfig.map(configJSON) ?? .null))
            if let error = id.configError { fields.append(("config_error", .string(error))) }
        }
        if id.kind == .lora || id.kind == .tlora || id.modules != nil {
            fields.append(("modules", .int(id.modules ?? 0)))
            fields.append(("text_encoder_modules", .int(id.textEncoderModules ?? 0)))
            fields.append(("rank", range(id.ranks.map(Double.init))))
            fields.append(("alpha", range(id.alphas)))
            fields.append(("metadata", .object(id.metadata.map { ($0.0, .string($0.1)) })))
            fields.append(("trigger", .optional(id.trigger)))
            fields.append(("method", .optional(id.method?.rawValue)))
            fields.append(("family", .optional(id.family)))
            if !id.ia3Axes.isEmpty {
                fields.append(("ia3_axes", .object(id.ia3Axes.sorted { $0.key > $1.key }.map { ($0.key, .int($0.value)) })))
            }
            fields.append(("schedule", id.schedule.map(scheduleJSON) ?? .null))
            if let note = id.scheduleNote { fields.append(("schedule_note", .string(note))) }
            if let variant = id.unsupportedVariant { fields.append(("unsupported", .string(variant))) }
            if !id.unknownKeys.isEmpty { fields.append(("unknown_keys", .array(id.unknownKeys.map { .string($0) }))) }
            if !id.fusedProjections.isEmpty {
                fields.append(("fused_projections", .array(id.fusedProjections.map { f in
                    .object([("module", .string(f.module)), ("canonical", .string(f.canonical)), ("parts", .array(f.parts.map { .string($0) }))])
                })))
            }
        }
        if let tensors {
            fields.append(("tensor_list", .array(tensors.map { info in
                .object([("name", .string(info.name)), ("dtype", .string(info.dtype.rawValue)),
                         ("shape", .array(info.shape.map { .int($0) }))])
            })))
        }
        return .object(fields)
    }

    /// One number when all agree, `{min, max}` otherwise, null when there is none.
    static func range(_ values: [Double]) -> JSONValue {
        guard let low = values.min(), let high = values.max() else { return .null }
        return low == high ? .double(low) : .object([("min", .double(low)), ("max", .double(high))])
    }

    static func scheduleJSON(_ s: RankSchedule) -> JSONValue {
        .object([("max_rank", .int(s.maxRank)), ("min_rank", .int(s.minRank)),
                 ("rank_alpha", .double(s.rankAlpha)), ("timesteps", .int(s.timesteps))])
    }

    static func configJSON(_ c: UNetConfig) -> JSONValue {
        let ints = { (values: [Int]) in JSONValue.array(values.map { .int($0) }) }
        return .object([
            ("block_out_channels", ints(c.blockOutChannels)),
            ("layers_per_block", .int(c.structure.layersPerBlock)),
            ("transformer_depths", ints(c.structure.downDepths)),
            ("mid_transformer_depth", .int(c.structure.midDepth)),
            ("up_transformer_depths", ints(c.structure.upDepths)),
            ("head_counts", ints(c.headCounts)),
            ("context_dim", .int(c.contextDim)),
            ("pooled_dim", .int(c.pooledDim)),
            ("add_time_embed_dim", .int(c.addTimeEmbedDim)),
            ("time_embed_dim", .int(c.timeEmbedDim)),
            ("in_channels", .int(c.inChannels)),
            ("out_channels", .int(c.outChannels)),
            ("use_linear_projection", .bool(c.useLinearProjection)),
            ("norm_groups", .int(c.normGroups)),
        ])
    }

    static func human(_ id: FileIdentity, tensors: [TensorInfo]?) -> String {
        var lines = ["\(id.path)"]
        let base = id.base.map { "base \($0)" + (id.derivative.map { " (\($0))" } ?? "") }
        let what = [id.kind.rawValue, id.format, base].compactMap { $0 }.joined(separator: ", ")
        lines.append("  \(what)")
        if let note = id.baseNote { lines.append(id.base == nil ? "  base: unknown, \(note)" : "  base: \(note)") }
        let dtypes = id.dtypes.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        lines.append("  \(id.tensorCount) tensors, \(formatCount(id.parameters)) parameters (\(dtypes))")
        if let components = id.components {
            lines.append("  components: " + Component.allCases.filter { components[$0] == true }.map(\.rawValue).joined(separator: ", "))
        }
        if let c = id.unetConfig {
            lines.append("  unet: channels \(c.blockOutChannels), depths \(c.structure.downDepths)/mid \(c.structure.midDepth), heads \(c.headCounts), context \(c.contextDim), pooled \(c.pooledDim)")
        } else if let error = id.configError {
            lines.append("  unet: \(error)")
        }
        if let modules = id.modules {
            var text = "  \(modules) modules"
            if let te = id.textEncoderModules, te > 0 { text += " (\(te) in text encoders)" }
            if let low = id.ranks.min(), let high = id.ranks.max() { text += ", rank \(low == high ? "\(low)" : "\(low)–\(high)")" }
            if let low = id.alphas.min(), let high = id.alphas.max() { text += ", alpha \(low == high ? fmt(low) : "\(fmt(low))–\(fmt(high))")" }
            lines.append(text)
        }
        if let method = id.method { lines.append("  method: \(method.rawValue)") }
        if let family = id.family, family != "lora" { lines.append("  family: \(family)") }
        if !id.ia3Axes.isEmpty {
            lines.append("  ia3: \(id.ia3Axes["output"] ?? 0) module(s) scale output rows, \(id.ia3Axes["input"] ?? 0) input channels")
        }
        if let s = id.schedule {
            lines.append("  schedule: rank \(s.minRank)…\(s.maxRank), alpha \(fmt(s.rankAlpha)), r(999)=\(s.rank(at: 999)) r(500)=\(s.rank(at: 500)) r(0)=\(s.rank(at: 0))")
        }
        if let note = id.scheduleNote { lines.append("  note: \(note)") }
        if let trigger = id.trigger { lines.append("  trigger: \(trigger)") }
        if let variant = id.unsupportedVariant {
            lines.append(variant == "DoRA" || variant == "IA3"
                ? "  unsupported: \(variant == "IA3" ? "(IA)³" : variant) (needs the base weights: merge --into applies it, convert --base --rank approximates it)"
                : "  unsupported: \(variant) (recognised, not applied by tlkit)")
        }
        if !id.unknownKeys.isEmpty { lines.append("  \(id.unknownKeys.count) unrecognised tensors, e.g. \(id.unknownKeys[0])") }
        if let f = id.fusedProjections.first {
            let leaves = f.parts.map { String($0.split(separator: ".").last ?? "") }.joined(separator: ", ")
            lines.append("  \(id.fusedProjections.count) fused projection(s), e.g. \(f.module) = \(leaves) (convert --to peft splits them exactly)")
        }
        for info in tensors ?? [] { lines.append("    \(info.name) \(info.dtype.rawValue) \(info.shape)") }
        return lines.joined(separator: "\n")
    }

    static func fmt(_ v: Double) -> String { Converter.number(v) }

    /// 1234 → "1.2K"; thousands up to T, so no count is ever written as 1000 of a smaller unit.
    static func formatCount(_ n: Int) -> String {
        var value = Double(n), unit = ""
        for next in ["K", "M", "B", "T"] where value >= 1000 {
            value /= 1000
            unit = next
        }
        return unit.isEmpty ? String(n) : format1(value) + unit
    }

    static func format1(_ v: Double) -> String { String(Double(Int(v * 10)) / 10) }
}
