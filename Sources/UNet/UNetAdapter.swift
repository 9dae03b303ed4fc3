import Adapters
import Engine

/// An adapter's UNet modules as Engine factors, ready for the per-call hook of the UNet's Linear layers.
///
/// Keys are diffusers module paths inside the UNet (`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`).
/// The mask at timestep t keeps the first `RankSchedule.keptComponents` components; unscheduled
/// adapters (plain LoRAs) keep all of them at every t. A user weight `scale` is folded into the factors
/// (the low-rank scale, or both λ vectors of an ortho module), so ΔW scales linearly with it.
public struct UNetAdapter: @unchecked Sendable {
    public struct Module {
        public let factors: AdapterFactors<Float>
        public let rank: Int
    }

    /// The rank schedule that masks the modules (nil: never masked), and how many components each
    /// mask index owns.
    public let schedule: RankSchedule?
    public let componentsPerRank: Int
    public let scale: Float
    public let modules: [String: Module]
    /// Adapter modules of other components (text encoders), which the UNet does not use.
    public let otherComponents: [String]

    /// The adapter's UNet modules (`paths`: only those) with the user weight `scale` folded in.
    public init(_ adapter: Adapter, scale: Float = 1, only paths: Set<String>? = nil) throws {
        self.schedule = adapter.schedule
        self.componentsPerRank = adapter.componentsPerRank
        self.scale = scale
        var modules: [String: Module] = [:]
        for (i, path) in adapter.unetModules where paths?.contains(path) ?? true {
            modules[path] = Module(factors: AdapterFactors(try adapter.factors(i), weight: scale), rank: adapter.modules[i].rank)
        }
        self.modules = modules
        self.otherComponents = adapter.modules.filter { $0.component != "unet" }.map(\.name)
    }

    /// Whether the adapter's schedule masks anything (T-LoRA); unmasked adapters act the same at every t.
    public var isMasked: Bool { schedule?.isMasked ?? false }

    /// Components of `module` kept at DDPM timestep `t` (nil: unmasked).
    public func active(_ module: Module, at t: Double?) -> Int {
        guard let schedule, let t else { return module.rank }
        return schedule.keptComponents(rank: module.rank, componentsPerRank: componentsPerRank, at: t)
    }
}

extension UNetAdapter {
    /// Factors already in Engine form (a training run's), masked by `schedule` (nil: never masked) with one
    /// component per rank. The tensors are shared, so updates to them reach the next forward pass.
    public init(factors: [String: AdapterFactors<Float>], schedule: RankSchedule?) {
        self.schedule = schedule
        componentsPerRank = 1
        scale = 1
        modules = factors.mapValues { Module(factors: $0, rank: $0.rank) }
        otherComponents = []
    }
}
