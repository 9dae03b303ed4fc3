import Adapters
import UNet

/// Adapters applied to a UNet for sampling (design.md §10, "Applying standard LoRAs"): modules of
/// unmasked adapters are merged once into private copies of the weights they adapt; masked (T-LoRA)
/// modules are hooked per call with the mask of that call's timestep.
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
        /// UNet modules this model has no Linear for.
        public var unusedModules: [String]
        /// Text-encoder modules: not applied yet (prompts are encoded without them).
        public var textEncoderModules: [String]
        /// Tensors the reader did not recognise as part of a module.
        public var unknownKeys: [String]
        public var warnings: [String]

        public var applied: Int { merged.count + hooked.count }
    }

    /// Adapters the sampler hooks at every UNet call.
    public let hooked: [UNetAdapter]
    public let reports: [Report]

    /// Applies `entries` to `unet`: merges unmasked ones into its weights now (undo with
    /// `unet.restoreWeights()`), and returns the masked ones for the per-call hook. With `strict`, a
    /// module that does not fit its layer is an error instead of being skipped.
    public init(_ entries: [Entry], unet: SDXLUNet, strict: Bool = false) throws {
        var hooked: [UNetAdapter] = [], reports: [Report] = []
        for entry in entries {
            let full = try UNetAdapter(entry.adapter, scale: entry.scale)
            let fit = unet.fit(full)
            if strict, let first = fit.skipped.first {
                throw SamplingError.badInput("\(entry.label): module \(first.module) \(first.reason) (--strict)")
            }
            let usable = full.restricted(to: Set(fit.applicable))
            let masked = usable.isMasked
            if masked {
                hooked.append(usable)
            } else {
                try unet.mergeIntoWeights(usable)
            }
            let standard = ![.tlkit, .tloraOfficial].contains(entry.adapter.format)
            reports.append(Report(
                label: entry.label, scale: entry.scale, schedule: masked ? entry.adapter.schedule : nil,
                scheduleFromMetadata: masked && standard,
                merged: masked ? [] : fit.applicable, hooked: masked ? fit.applicable : [],
                skipped: fit.skipped, unusedModules: fit.unused, textEncoderModules: full.otherComponents,
                unknownKeys: entry.adapter.unknownKeys, warnings: entry.adapter.warnings))
        }
        self.hooked = hooked
        self.reports = reports
    }
}
