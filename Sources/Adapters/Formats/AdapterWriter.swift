import Crypto
import DigestHex
import Foundation
import SafeTensors
import Yams

/// The formats tlkit writes (`--to`).
public enum OutputFormat: String, CaseIterable, Sendable {
    case kohya, peft, tlora
    case tloraOfficial = "tlora-official"
    /// LyCORIS' T-LoRA (`q_layer`, `p_layer`, `lambda_layer`, `alpha` under kohya names; LycorisTLoRA.swift).
    case lycorisTlora = "lycoris-tlora"

    public var adapterFormat: AdapterFormat {
        switch self {
        case .kohya, .lycorisTlora: return .kohya
        case .peft: return .peft
        case .tlora: return .tlkit
        case .tloraOfficial: return .tloraOfficial
        }
    }
}

public struct WriteOptions: Sendable {
    /// Output dtype; nil keeps each module's stored dtype.
    public var dtype: DType?
    public var title: String?
    public var trigger: String?
    /// Whether tensors holding NaN or infinity (or values past the output dtype's range) may be written.
    public var nonFinite: NonFinitePolicy
    /// Threads producing the tensors; nil lets `ProductionWorkers` decide (one per core, a few at most).
    public var workers: Int?
    public init(dtype: DType? = nil, title: String? = nil, trigger: String? = nil, nonFinite: NonFinitePolicy = .refuse,
                workers: Int? = nil) {
        self.dtype = dtype
        self.title = title
        self.trigger = trigger
        self.nonFinite = nonFinite
        self.workers = workers
    }
}

/// Writes an adapter in one of the output formats, streaming tensor by tensor (each module's factors
/// are loaded once, when its first tensor is due) and atomically.
public enum AdapterWriter {
    struct Planned: @unchecked Sendable {
        let spec: TensorSpec
        let module: Int
        let values: (Factors) throws -> [Float]
    }

    /// Writes `adapter` (already converted to what `format` can hold) to `path` (`-` for stdout).
    /// For `tlora-official` a path not ending in `.safetensors` is a folder: `checkpoint-N/` and `logs/hparams.yml`.
    public static func write(_ adapter: Adapter, format: OutputFormat, to path: String, options: WriteOptions = WriteOptions()) throws {
        let plan = try self.plan(adapter, format: format, options: options)
        var target = path
        if format == .tloraOfficial, path != "-", !path.hasSuffix(".safetensors") {
            target = try OfficialLayout.prepareFolder(path, adapter: adapter)
        }
        let specs = plan.map(\.spec)
        if try !OutputTarget.resolve(target).isRewritable {
            // Standard output, a device or a FIFO cannot be rewritten: hash the data in a first pass.
            let metadata = AdapterMetadata.build(adapter, format: format, dataSHA256: try hashData(plan, adapter: adapter, options: options), options: options)
            let (_, layout) = try SafeTensorsWriter.header(metadata: [:], tensors: specs)
            try TensorProduction(layout: layout, plan: plan, adapter: adapter, options: options).run { production in
                try SafeTensorsWriter.write(to: target, metadata: metadata, tensors: specs) { _ in try production.next() }
            }
            return
        }
        // One pass: the header's hashes are placeholders of the final length, filled in at the end.
        let placeholder = String(repeating: "0", count: 64)
        let writer = try SafeTensorsWriter(path: target, metadata: AdapterMetadata.build(adapter, format: format, dataSHA256: placeholder, options: options), tensors: specs)
        do {
            // Producing tensors (loading, folding, converting), hashing them and writing them overlap:
            // workers produce modules ahead in file order (TensorProduction), a hashing thread follows
            // the writes.
            let hasher = BackgroundHasher()
            try TensorProduction(layout: writer.layout, plan: plan, adapter: adapter, options: options).run { production in
                for info in writer.layout {
                    let bytes = try production.next()
                    hasher.update(bytes)
                    try writer.write(info.name, bytes: bytes)
                }
            }
            let hash = hasher.finalize()
            try writer.replaceMetadata(AdapterMetadata.build(adapter, format: format, dataSHA256: hash, options: options))
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// One planned tensor's bytes in the file's dtype, its module's factors loaded at most once in a row;
    /// checked as encoded, so values the dtype cannot hold are caught too.
    static func tensorBytes(_ planned: Planned, _ info: TensorInfo, _ adapter: Adapter, _ options: WriteOptions,
                            _ cache: inout (Int, Factors)?) throws -> [UInt8] {
        let bytes = FloatConversion.fromFloat32(try planned.values(try cachedFactors(adapter, planned.module, &cache)), dtype: info.dtype)
        try options.nonFinite.admit(encoded: bytes, dtype: info.dtype, tensor: info.name, module: adapter.modules[planned.module].name)
        return bytes
    }

    static func cachedFactors(_ adapter: Adapter, _ index: Int, _ cache: inout (Int, Factors)?) throws -> Factors {
        if let cached = cache, cached.0 == index { return cached.1 }
        let factors = try adapter.factors(index)
        cache = (index, factors)
        return factors
    }

    /// SHA-256 of the data section the plan produces (tensors in file order), computed before writing
    /// because the header carries it (`sshs_model_hash`, `modelspec.hash_sha256`, `tlora.data_sha256`).
    static func hashData(_ plan: [Planned], adapter: Adapter, options: WriteOptions) throws -> String {
        let (_, layout) = try SafeTensorsWriter.header(metadata: [:], tensors: plan.map(\.spec))
        var hasher = SHA256()
        try TensorProduction(layout: layout, plan: plan, adapter: adapter, options: options).run { production in
            for _ in layout { hasher.update(data: try production.next()) }
        }
        return hasher.finalize().hex
    }

    static func plan(_ adapter: Adapter, format: OutputFormat, options: WriteOptions) throws -> [Planned] {
        var plan: [Planned] = []
        for (index, module) in adapter.modules.enumerated() {
            let dtype = options.dtype ?? module.dtype
            switch format {
            case .kohya, .peft:
                guard !module.isOrtho else { throw AdapterError("\(module.name): an ortho module must be folded before writing \(format.rawValue)") }
                let base: String
                if format == .kohya {
                    guard let name = BaseNames.kohyaName(module.name, base: adapter.base.base) else { throw AdapterError("\(module.name): no kohya name for this module") }
                    base = name
                    plan.append(Planned(spec: TensorSpec(name: base + ".alpha", dtype: dtype, shape: []), module: index) { f in
                        guard case let .lowRank(l) = f else { return [] }
                        return [l.alpha ?? Float(l.rank)]
                    })
                } else {
                    guard let name = BaseNames.peftName(module.name, base: adapter.base.base) else {
                        throw AdapterError("\(module.name): diffusers has no layer for this fused projection (write it --to kohya)")
                    }
                    base = name
                }
                let (downKey, upKey) = format == .kohya ? (".lora_down.weight", ".lora_up.weight") : (".lora_A.weight", ".lora_B.weight")
                plan.append(Planned(spec: TensorSpec(name: base + downKey, dtype: dtype, shape: module.downShape(rank: module.rank)), module: index) { f in
                    guard case let .lowRank(l) = f else { return [] }
                    return l.down
                })
                plan.append(Planned(spec: TensorSpec(name: base + upKey, dtype: dtype, shape: module.upShape(rank: module.rank)), module: index) { f in
                    guard case let .lowRank(l) = f else { return [] }
                    return l.up
                })
            case .tlora:
                plan += tloraTensors(module, index: index, dtype: dtype)
            case .tloraOfficial:
                plan += try OfficialLayout.tensors(module, index: index, dtype: dtype)
            case .lycorisTlora:
                plan += try LycorisTLoRA.tensors(module, index: index, dtype: dtype, base: adapter.base.base)
            }
        }
        return plan
    }

    static func tloraTensors(_ module: ModuleInfo, index: Int, dtype: DType) -> [Planned] {
        let base = module.name + ".tlora."
        let r = module.rank
        if module.isOrtho {
            let parts: [(String, [Int], (Ortho) -> [Float])] = [
                ("q", [r, module.inFeatures], { $0.q }), ("p", [module.outFeatures, r], { $0.p }), ("lambda", [r], { $0.lambda }),
                ("q0", [r, module.inFeatures], { $0.q0 }), ("p0", [module.outFeatures, r], { $0.p0 }), ("lambda0", [r], { $0.lambda0 }),
            ]
            return parts.map { name, shape, pick in
                Planned(spec: TensorSpec(name: base + name, dtype: dtype, shape: shape), module: index) { f in
                    guard case let .ortho(o) = f else { return [] }
                    return pick(o)
                }
            }
        }
        return [
            Planned(spec: TensorSpec(name: base + "down", dtype: dtype, shape: module.downShape(rank: r)), module: index) { f in
                guard case let .lowRank(l) = f else { return [] }
                return l.down
            },
            Planned(spec: TensorSpec(name: base + "up", dtype: dtype, shape: module.upShape(rank: r)), module: index) { f in
                guard case let .lowRank(l) = f else { return [] }
                return l.up
            },
            Planned(spec: TensorSpec(name: base + "alpha", dtype: dtype, shape: []), module: index) { f in
                guard case let .lowRank(l) = f else { return [] }
                return [l.alpha ?? Float(l.rank)]
            },
        ]
    }
}
