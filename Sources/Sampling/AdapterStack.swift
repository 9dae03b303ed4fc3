import Adapters
import TextEncoders
import UNet

/// Adapters applied to a UNet (and the text encoders) for sampling (docs/contract.md, "Applying
/// adapters"): modules of unmasked adapters are merged once into the weights they adapt (the models' own
/// Float32 copies of the checkpoint);
/// masked (T-LoRA) modules are hooked per call with the mask of that call's timestep.
public struct AdapterStack {
    /// One adapter to apply, with its user weight.
    public struct Entry {
        public var adapter: Adapter
        public var scale: Float
        public var label: String

        public init(adapter: Adapter, scale: Float = 1, label: String) {
            self.adapter = adapter
            self.scale = scale
            self.label = label
        }
    }

    /// What happened to one adapter's modules and keys.
    public struct Report: Sendable {
        public var label: String
        public var scale: Float
        /// Masked per step with this schedule (nil: applied unmasked at every step).
        public var schedule: RankSchedule?
        /// True when a standard LoRA (kohya, PEFT, …) is masked by its folded `tlora.*` metadata.
        public var scheduleFromMetadata: Bool
        /// UNet modules merged into the weights (unmasked adapters).
        public var merged: [String]
        /// UNet modules hooked per call (masked adapters).
        public var hooked: [String]
        /// UNet modules that name a layer but do not fit it, with the reason.
        public var skipped: [UNetAdapterFit.Skipped]
        /// Text-encoder modules merged into the encoders' weights (canonical names).
        public var textEncoderMerged: [String]
        /// Modules not applied, canonical names: UNet modules this model has no Linear for, and
        /// text-encoder modules when no encoders are given (embeddings from a file) or no layer fits.
        public var unusedModules: [String]
        /// Tensors the reader did not recognise as part of a module.
        public var unknownKeys: [String]
        public var warnings: [String]

        public var applied: Int { merged.count + hooked.count + textEncoderMerged.count }
    }

    /// Adapters the sampler hooks at every UNet call.
    public let hooked: [UNetAdapter]
    public let reports: [Report]

    /// Applies `entries` to `unet`: merges unmasked ones into its weights now (`restorable`: so that
    /// `unet.restoreWeights()` can undo it, at the cost of a second copy of the adapted weights), and returns the masked ones for the per-call hook. Text-encoder modules
    /// are merged into `textEncoders` when given (unmasked: the encoders see no timestep), so prompts
    /// encoded afterwards carry them, as diffusers' `load_lora_weights` does. With `strict`, a module
    /// that does not fit its layer is an error instead of being skipped.
    public init(_ entries: [Entry], unet: SDXLUNet, textEncoders: SDXLTextEncoders? = nil, strict: Bool = false,
                restorable: Bool = false) throws {
        var hooked: [UNetAdapter] = [], reports: [Report] = []
        for entry in entries {
            let fit = unet.fit(entry.adapter)
            if strict, let first = fit.skipped.first {
                throw SamplingError.badInput("\(entry.label): module \(first.module) \(first.reason) (--strict)")
            }
            let masked = entry.adapter.schedule?.isMasked ?? false
            if masked {
                hooked.append(try UNetAdapter(entry.adapter, scale: entry.scale, only: Set(fit.applicable)))
            } else {
                try unet.mergeIntoWeights(entry.adapter, weight: entry.scale, only: Set(fit.applicable), restorable: restorable)
            }
            var skipped = fit.skipped, unused = fit.unused.map { "unet." + $0 }, textMerged: [String] = []
            for (i, info) in entry.adapter.modules.enumerated() where info.component != "unet" {
                guard let encoders = textEncoders, let encoder = info.component == "text_encoder" ? encoders.encoder
                        : info.component == "text_encoder_2" ? encoders.encoder2 : nil else {
                    unused.append(info.name)
                    continue
                }
                let path = String(info.name.dropFirst(info.component.count + 1))
                guard let shape = encoder.linearShapes[path] else { unused.append(info.name); continue }
                guard shape == [info.outFeatures, info.inFeatures] else {
                    let why = "is \(info.outFeatures)×\(info.inFeatures), the layer is \(shape[0])×\(shape[1])"
                    if strict { throw SamplingError.badInput("\(entry.label): module \(info.name) \(why) (--strict)") }
                    skipped.append(.init(module: info.name, reason: why))
                    continue
                }
                try encoder.addToWeight(path, delta: try entry.adapter.delta(i, at: nil, weight: entry.scale))
                textMerged.append(info.name)
            }
            let standard = ![.tlkit, .tloraOfficial].contains(entry.adapter.format)
            reports.append(Report(
                label: entry.label, scale: entry.scale, schedule: masked ? entry.adapter.schedule : nil,
                scheduleFromMetadata: masked && standard,
                merged: masked ? [] : fit.applicable, hooked: masked ? fit.applicable : [],
                skipped: skipped, textEncoderMerged: textMerged, unusedModules: unused,
                unknownKeys: entry.adapter.unknownKeys, warnings: entry.adapter.warnings))
        }
        self.hooked = hooked
        self.reports = reports
    }
}
