import SafeTensors

/// One adapted module: its canonical name and what its factors look like, without loading them.
public struct ModuleInfo: Sendable, Equatable {
    /// `<component>.<diffusers module path>`, e.g. `unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_q`.
    public var name: String
    public var isOrtho: Bool
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int
    /// The stored dtype of the factors (outputs keep it unless asked otherwise).
    public var dtype: DType
    /// A low-rank module's alpha (scale = alpha / rank); nil means alpha = rank, and ortho modules have
    /// none. Kept here so writers can describe an adapter without loading its factors.
    public var alpha: Float? = nil
    /// The kernel [kh, kw] of a convolution module (empty for a linear one). A convolution's factors are
    /// those of a linear layer on the flattened kernel window (in = Cin·kh·kw), so all algebra treats both
    /// alike; only files and checkpoints see the 4-D shapes.
    public var kernel: [Int] = []
    /// The family (`loha`, `lokr`, `locon` for a LoCon with a Tucker core) whose factors the reader turns
    /// into this LoRA form; nil for modules stored as LoRA factors. A file holding any is never "already"
    /// in a LoRA format.
    public var family: String? = nil
    /// Set for a DoRA module (magnitude vector + low-rank part): its factors are asked for with
    /// `Adapter.dora(_:)`, and `factors(_:)` refuses it.
    public var magnitudeAxis: DoRAAxis? = nil
    /// Set for an (IA)³ module (a vector scaling the base weight's rows or input channels): asked for with
    /// `Adapter.ia3(_:)`, and `factors(_:)` refuses it. Its rank is 0, and the dimension its vector does
    /// not cover is 0 until `IA3.resolved` takes it from the base checkpoint.
    public var ia3: IA3Layout? = nil
    /// Set for a LyCORIS T-LoRA module: the file holds Q, P, λ and alpha only, and the frozen part is
    /// recomputed from the base weight (`LycorisTLoRA.resolve`); until then `factors(_:)` refuses it.
    public var frozenFromBase = false

    public init(name: String, isOrtho: Bool, rank: Int, inFeatures: Int, outFeatures: Int, dtype: DType, alpha: Float? = nil,
                kernel: [Int] = []) {
        self.name = name
        self.isOrtho = isOrtho
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.dtype = dtype
        self.alpha = alpha
        self.kernel = kernel
    }

    public var component: String { String(name.prefix { $0 != "." }) }

    public var isConvolution: Bool { !kernel.isEmpty }

    /// Shape of the adapted layer's weight: [out, in] or [Cout, Cin, kh, kw].
    public var weightShape: [Int] {
        isConvolution ? [outFeatures, inFeatures / kernel.reduce(1, *)] + kernel : [outFeatures, inFeatures]
    }

    /// File shape of the down factor of rank `r`: [r, in], or [r, Cin, kh, kw] (kohya's LoCon and PEFT's
    /// conv LoRA, whose lora_A is a Conv2d(Cin, r, kernel)).
    public func downShape(rank r: Int) -> [Int] {
        isConvolution ? [r, inFeatures / kernel.reduce(1, *)] + kernel : [r, inFeatures]
    }

    /// File shape of the up factor of rank `r`: [out, r], or [Cout, r, 1, 1] (a 1×1 convolution).
    public func upShape(rank r: Int) -> [Int] {
        isConvolution ? [outFeatures, r, 1, 1] : [outFeatures, r]
    }
}

/// An adapter = method + optional timestep schedule + modules + metadata (docs/method.md,
/// "Parametrisations"; docs/formats.md, "Metadata").
/// Factors are loaded module by module from their source, so large adapters stream.
public struct Adapter: Sendable {
    public var format: AdapterFormat
    /// Nil for a plain LoRA, and for a scheduled file that does not name its method (`scheduledMethod`).
    public var method: AdapterMethod?
    public var schedule: RankSchedule?
    /// Mask keeps the first c · r(t) components (2 for a folded ortho module; n or 2n after merging).
    public var componentsPerRank: Int
    public var modules: [ModuleInfo]
    /// The source file's metadata, kept for provenance and copied where tools in this field copy it.
    public var metadata: [String: String]
    /// Tensors the reader did not recognise.
    public var unknownKeys: [String]
    /// Things the user should know (stale schedule metadata, allowed NaN values), one line each.
    public var warnings: [String] = []
    /// The file (or `catalog:REF`) it was read from; nil for results computed in memory.
    public var origin: String?
    /// Modules of the source file holding NaN or infinity; `NonFinitePolicy` decides what that means.
    public var nonFinite: [NonFiniteFinding] = []
    /// The base model the source file was made for (unknown for results computed in memory from nothing).
    /// It picks the module-name map the writers use; unknown names as SDXL.
    public var base = BaseVerdict()
    private(set) var source: any FactorSource

    public init(format: AdapterFormat, method: AdapterMethod?, schedule: RankSchedule?, componentsPerRank: Int,
                modules: [ModuleInfo], metadata: [String: String], unknownKeys: [String] = [], source: any FactorSource) {
        self.format = format
        self.method = method
        self.schedule = schedule
        self.componentsPerRank = componentsPerRank
        self.modules = modules
        self.metadata = metadata
        self.unknownKeys = unknownKeys
        self.source = source
    }

    /// The method a scheduled adapter is written with: the one it names, else a T-LoRA of its modules' kind.
    public var scheduledMethod: AdapterMethod { method ?? .assumedScheduled(ortho: modules.contains { $0.isOrtho }) }

    public func factors(_ index: Int) throws -> Factors {
        if modules[index].magnitudeAxis != nil { throw AdapterError(DoRAFactors.refusal(module: modules[index].name)) }
        if modules[index].ia3 != nil { throw AdapterError(IA3Factors.refusal(module: modules[index].name)) }
        if modules[index].frozenFromBase { throw AdapterError(LycorisTLoRA.refusal(module: modules[index].name)) }
        return try source.factors(index)
    }

    /// The stored factors of LyCORIS T-LoRA module `index` (nil for any other module).
    public func lycorisTLoRA(_ index: Int) throws -> LycorisTLoRAFactors? {
        guard modules[index].frozenFromBase else { return nil }
        return try source.lycorisTLoRA(index)
    }

    /// Whether any module is a LyCORIS T-LoRA module still waiting for its base weight.
    public var needsFrozenBase: Bool { modules.contains { $0.frozenFromBase } }

    /// The magnitude vector and low-rank part of DoRA module `index` (nil for any other module).
    public func dora(_ index: Int) throws -> DoRAFactors? {
        guard modules[index].magnitudeAxis != nil else { return nil }
        return try source.dora(index)
    }

    /// Whether any module is DoRA (only `merge --into` reads such adapters).
    public var hasDoRA: Bool { modules.contains { $0.magnitudeAxis != nil } }

    /// The vector of (IA)³ module `index` (nil for any other module).
    public func ia3(_ index: Int) throws -> IA3Factors? {
        guard modules[index].ia3 != nil else { return nil }
        return try source.ia3(index)
    }

    /// Whether any module is (IA)³ (only `merge --into` and `convert --base --rank` read such adapters).
    public var hasIA3: Bool { modules.contains { $0.ia3 != nil } }

    mutating func replaceSource(_ source: any FactorSource) { self.source = source }

    public func factors(named name: String) throws -> Factors? {
        guard let index = modules.firstIndex(where: { $0.name == name }) else { return nil }
        return try factors(index)
    }

    /// Components kept at timestep `t` for a module of `rank` (all of them when unscheduled).
    public func keptComponents(rank: Int, at t: Double?) -> Int {
        guard let schedule, let t else { return rank }
        return schedule.keptComponents(rank: rank, componentsPerRank: componentsPerRank, at: t)
    }

    /// ΔW of module `index` as it acts at timestep `t` (nil: unmasked), [out, in] row-major, times a
    /// user `weight` (applied after the Float64 sum is rounded, so weight 1 changes nothing).
    public func delta(_ index: Int, at t: Double?, weight: Float = 1) throws -> [Float] {
        let f = try factors(index)
        let delta = Delta.compute(f, keep: keptComponents(rank: f.rank, at: t))
        return weight == 1 ? delta : delta.map { $0 * weight }
    }
}

/// Where an adapter's factors come from: a file read lazily, or factors already in memory.
public protocol FactorSource: Sendable {
    func factors(_ index: Int) throws -> Factors
    func dora(_ index: Int) throws -> DoRAFactors?
    func ia3(_ index: Int) throws -> IA3Factors?
    func lycorisTLoRA(_ index: Int) throws -> LycorisTLoRAFactors?
}

extension FactorSource {
    /// Only a file holds DoRA and (IA)³ modules; results computed in memory never do.
    public func dora(_ index: Int) throws -> DoRAFactors? { nil }
    public func ia3(_ index: Int) throws -> IA3Factors? { nil }
    public func lycorisTLoRA(_ index: Int) throws -> LycorisTLoRAFactors? { nil }
}

/// Factors held in memory (results of conversion, merging, training).
public struct InMemoryFactors: FactorSource {
    public let all: [Factors]
    public init(_ all: [Factors]) { self.all = all }
    public func factors(_ index: Int) throws -> Factors { all[index] }
}
