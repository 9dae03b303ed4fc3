import Foundation
import SafeTensors

/// What `tlkit convert` was asked for (docs/contract.md, "Conversion, diff and ranks").
public struct ConvertRequest: Sendable {
    public var to: OutputFormat
    public var atTimestep: Double?
    public var rank: Int?
    public var flags: ScheduleFlags
    /// Drop (and report) modules the target cannot carry instead of failing.
    public var skipUnsupported: Bool
    /// The base checkpoint (`--base`): with `rank`, each DoRA module's ΔW = W' − W is approximated by a
    /// LoRA of that rank; `--to lycoris-tlora` checks the T-LoRA's frozen part against it. (A LyCORIS
    /// T-LoRA input is completed from it before conversion: `LycorisTLoRA.resolve`.)
    public var base: BaseWeights?
    public init(to: OutputFormat, atTimestep: Double? = nil, rank: Int? = nil, flags: ScheduleFlags = ScheduleFlags(),
                skipUnsupported: Bool = false, base: BaseWeights? = nil) {
        self.base = base
        self.to = to
        self.atTimestep = atTimestep
        self.rank = rank
        self.flags = flags
        self.skipUnsupported = skipUnsupported
    }
}

/// Per-module and overall facts of a conversion, for the report.
public struct ConversionReport: Sendable {
    public struct Module: Sendable {
        public let name: String
        public let rankIn: Int
        public let rankOut: Int
        /// Relative Frobenius error, for lossy options.
        public let relativeError: Double?
    }
    public var modules: [Module] = []
    /// Modules left out (`skipUnsupported`), with why.
    public var dropped: [(module: String, reason: String)] = []
    public var overallError: Double?
    public var notes: [String] = []
}

/// A usage error (exit 2): the request does not make sense for this adapter.
public struct ConversionUsageError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public enum Converter {
    /// Turns `input` into an adapter the target format can hold, lossless unless a lossy option was given.
    public static func convert(_ input: Adapter, _ request: ConvertRequest) throws -> (Adapter, ConversionReport) {
        var report = ConversionReport()
        report.notes += input.warnings
        if let dora = input.modules.first(where: { $0.magnitudeAxis != nil }), request.base == nil || request.rank == nil {
            guard request.base != nil else { throw AdapterError(DoRAFactors.refusal(module: dora.name)) }
            throw ConversionUsageError(message: "module \(dora.name) is a DoRA module: converting it against a base needs --rank (its ΔW is approximated by a LoRA of that rank)")
        }
        if let ia3 = input.modules.first(where: { $0.ia3 != nil }), request.base == nil || request.rank == nil {
            guard request.base != nil else { throw AdapterError(IA3Factors.refusal(module: ia3.name)) }
            throw ConversionUsageError(message: "module \(ia3.name) is an (IA)³ module: converting it against a base needs --rank (its ΔW is approximated by a LoRA of that rank)")
        }
        if let lycoris = input.modules.first(where: \.frozenFromBase) {
            throw ConversionUsageError(message: LycorisTLoRA.refusal(module: lycoris.name))
        }
        if request.to == .tloraOfficial { try BaseRequirement.requireSDXL(input, for: "--to tlora-official (the official T-LoRA layout is SDXL's)") }
        if request.to == .lycorisTlora {
            try BaseRequirement.requireSDXL(input, for: "--to lycoris-tlora (the frozen part comes from an SDXL checkpoint)")
            guard request.base != nil else {
                throw ConversionUsageError(message: "--to lycoris-tlora needs --base MODEL: LyCORIS recomputes a T-LoRA's frozen part from the base weight, and tlkit checks that the adapter's frozen part is that one")
            }
        }
        let lost = uncarried(input, to: request.to)
        if !lost.isEmpty, !request.skipUnsupported {
            throw UncarriedModules(modules: lost.map { ($0.module, $0.reason) })
        }
        report.dropped = lost.map { ($0.module, $0.reason) }
        let adapter = lost.isEmpty ? input : dropping(Set(lost.compactMap(\.index)), from: input)
        guard !adapter.modules.isEmpty else { throw AdapterError("no module left to write: \(UncarriedModules(modules: report.dropped))") }
        if request.to == .peft, adapter.modules.contains(where: { $0.component == "unet" }) {
            report.notes.append("ComfyUI and A1111 do not load PEFT-named UNet LoRAs (they map kohya and attn-procs names only; ComfyUI also ignores PEFT's alpha): --to kohya is the portable choice")
        }
        var current = adapter
        // Set when fused projections were split or stacked: each output module's source modules.
        var regroupedFrom: [[Int]]? = nil

        if let t = request.atTimestep {
            guard let schedule = adapter.schedule else {
                throw ConversionUsageError(message: "--at-timestep needs a scheduled adapter (T-LoRA or a LoRA with tlora.* metadata); this one applies the same at every timestep")
            }
            guard t >= 0, t <= Double(schedule.timesteps) else {
                throw ConversionUsageError(message: "--at-timestep \(t) is outside 0…\(schedule.timesteps)")
            }
            current = bake(current, at: t)
            report.notes.append("baked at timestep \(number(t)): rank r(t) = \(schedule.rank(at: t)) of \(schedule.maxRank); the output has no schedule")
        }
        if let rank = request.rank {
            guard current.schedule == nil else {
                throw ConversionUsageError(message: "--rank on a scheduled adapter needs --at-timestep (compressing would mix the masked components)")
            }
            guard rank >= 1 else { throw ConversionUsageError(message: "--rank must be at least 1") }
            let (compressed, errors, overall) = try compress(current, rank: rank, base: request.base)
            current = compressed
            report.overallError = overall
            report.modules = zip(adapter.modules, zip(compressed.modules, errors)).map {
                ConversionReport.Module(name: $0.name, rankIn: $0.rank, rankOut: $1.0.rank, relativeError: $1.1)
            }
        }

        switch request.to {
        case .kohya, .peft:
            if current.modules.contains(where: \.isOrtho) {
                current = foldOrtho(current)
                report.notes.append("ortho modules folded exactly into rank-2R LoRAs (mask index i owns components 2i, 2i+1); the schedule is in tlora.* metadata")
            }
            // FLUX.1/SD3: kohya's files hold fused q, k, v projections, diffusers' separate ones.
            let layout = request.to == .kohya ? try FusedLayout.fuse(current) : try FusedLayout.split(current)
            if !layout.notes.isEmpty {
                current = layout.adapter
                regroupedFrom = layout.origins
                report.notes += layout.notes
            }
            if request.to == .kohya, let (uniform, changed) = uniformAlpha(current) {
                current = uniform
                report.notes.append("alpha made one value (\(number(Double(uniform.modules.first?.alpha ?? 0)))) in every module; the \(changed) module(s) that had another carry the ratio in lora_up — the same ΔW for kohya's loaders, and right in diffusers, which reads a single alpha for all modules of a kohya file")
            }
        case .tlora:
            if current.schedule == nil {
                guard let minRank = request.flags.minRank else {
                    throw ConversionUsageError(message: "--to tlora from an unscheduled LoRA needs --min-rank (and --max-rank, --rank-alpha if not the rank and 1)")
                }
                current = try orderBySingularValue(current, flags: request.flags, minRank: minRank)
                report.notes.append("components reordered by singular value so the mask drops the weakest first; exact at t = 0")
            }
        case .lycorisTlora:
            guard current.componentsPerRank == 1 else {
                throw AdapterError("a LyCORIS T-LoRA holds one component per mask index; this adapter has \(current.componentsPerRank) (a merge or a folded T-LoRA): write --to tlora or --to kohya")
            }
            current = try LycorisTLoRA.matchingBase(current, base: request.base!)
        case .tloraOfficial:
            guard current.schedule != nil else {
                throw ConversionUsageError(message: "--to tlora-official needs a schedule: give --min-rank (a plain LoRA becomes a vanilla T-LoRA)")
            }
            if current.componentsPerRank == 2, !current.modules.contains(where: \.isOrtho) {
                current = unfold(current)
            } else if current.componentsPerRank != 1 {
                throw AdapterError("the official layout holds one component per mask index; this adapter has \(current.componentsPerRank) (a merge): write --to tlora")
            }
        }
        if let origins = regroupedFrom, report.modules.isEmpty || report.modules.count != current.modules.count {
            // Split or stacked modules: each output module with the rank(s) it came from.
            let errors = Dictionary(report.modules.map { ($0.name, $0.relativeError) }, uniquingKeysWith: { a, _ in a })
            report.modules = zip(current.modules, origins).map { module, from in
                let sources = from.map { adapter.modules[$0] }
                let error = sources.compactMap { errors[$0.name] ?? nil }.max()
                return ConversionReport.Module(name: module.name, rankIn: sources.reduce(0) { $0 + $1.rank }, rankOut: module.rank, relativeError: error)
            }
        } else if report.modules.isEmpty {
            report.modules = zip(adapter.modules, current.modules).map {
                ConversionReport.Module(name: $0.name, rankIn: $0.rank, rankOut: $1.rank, relativeError: nil)
            }
        }
        current.format = request.to.adapterFormat
        return (current, report)
    }

    /// A number as metadata and reports write it: integral values without a fraction. Only values well
    /// inside Int's range go through Int (converting infinity or 1e308 would trap).
    public static func number(_ t: Double) -> String { t == t.rounded() && abs(t) < 1e15 ? String(Int(t)) : String(t) }

    /// A new adapter whose factors are `transform` of the source's, computed lazily module by module.
    static func mapped(_ adapter: Adapter, modules: [ModuleInfo], _ transform: @escaping @Sendable (Int, Factors) throws -> Factors) -> Adapter {
        var result = adapter
        result.modules = modules
        result.replaceSource(TransformedFactors(base: adapter, transform: transform))
        return result
    }

    /// The adapter as it acts at timestep t: only the first c·r(t) components, no schedule.
    static func bake(_ adapter: Adapter, at t: Double) -> Adapter {
        let modules = adapter.modules.map { m -> ModuleInfo in
            var out = m
            let keep = adapter.keptComponents(rank: m.rank, at: t)
            out.rank = m.isOrtho ? 2 * keep : keep
            // The scale is kept: alpha follows the rank (ortho folds to scale 1).
            out.alpha = m.isOrtho ? nil : m.alpha.map { $0 / Float(m.rank) * Float(keep) }
            out.isOrtho = false
            return out
        }
        var result = mapped(adapter, modules: modules) { index, factors in
            let keep = adapter.keptComponents(rank: factors.rank, at: t)
            switch factors {
            case let .ortho(o): return .lowRank(Fold.interleaved(o, keep: keep))
            case let .lowRank(l): return .lowRank(Fold.truncated(l, keep: keep))
            }
        }
        result.schedule = nil
        result.componentsPerRank = 1
        result.metadata["tlora.baked_at_timestep"] = number(t)
        return result
    }

    /// Ortho modules → exact interleaved rank-2R LoRAs; the schedule stays with components_per_rank × 2.
    static func foldOrtho(_ adapter: Adapter) -> Adapter {
        let modules = adapter.modules.map { m -> ModuleInfo in
            var out = m
            if m.isOrtho { out.rank = 2 * m.rank; out.isOrtho = false }
            return out
        }
        var result = mapped(adapter, modules: modules) { _, factors in
            guard case let .ortho(o) = factors else { return factors }
            return .lowRank(Fold.interleaved(o, keep: o.rank))
        }
        if adapter.schedule != nil { result.componentsPerRank = adapter.componentsPerRank * 2 }
        return result
    }

    /// The adapter with one alpha in every module — the most common one — and each other module's ratio
    /// alpha/A folded into its up factor, so ΔW is unchanged; nil when the alphas already agree.
    /// kohya files may hold an alpha per module, but diffusers' kohya loader applies the most common
    /// alpha to every UNet module (its per-module alpha keys never match), so mixed alphas load wrong there.
    static func uniformAlpha(_ adapter: Adapter) -> (Adapter, Int)? {
        let alphas = adapter.modules.map { $0.alpha ?? Float($0.rank) }
        let counts = Dictionary(alphas.map { ($0, 1) }, uniquingKeysWith: +)
        guard counts.count > 1,
              let common = counts.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key })?.key, common > 0 else { return nil }
        let modules = adapter.modules.map { m -> ModuleInfo in
            var out = m
            out.alpha = common
            return out
        }
        let result = mapped(adapter, modules: modules) { _, factors in
            guard case var .lowRank(l) = factors else { return factors }
            let ratio = (l.alpha ?? Float(l.rank)) / common
            if ratio != 1 { l.up = l.up.map { $0 * ratio } }
            l.alpha = common
            return .lowRank(l)
        }
        return (result, alphas.filter { $0 != common }.count)
    }

    /// A folded (c = 2) LoRA back to ortho form with λ = 1: exact ΔW(t) for every t.
    static func unfold(_ adapter: Adapter) -> Adapter {
        let modules = adapter.modules.map { m -> ModuleInfo in
            var out = m
            out.rank = m.rank / 2
            out.isOrtho = true
            out.alpha = nil
            return out
        }
        var result = mapped(adapter, modules: modules) { _, factors in
            guard case let .lowRank(l) = factors else { return factors }
            let r = l.rank / 2, scale = l.scale
            var q = [Float](), q0 = [Float](), p = [Float](repeating: 0, count: l.outFeatures * r), p0 = p
            for c in 0..<r {
                q += l.down[(2 * c) * l.inFeatures..<(2 * c + 1) * l.inFeatures]
                q0 += l.down[(2 * c + 1) * l.inFeatures..<(2 * c + 2) * l.inFeatures]
                for o in 0..<l.outFeatures {
                    p[o * r + c] = l.up[o * l.rank + 2 * c] * scale
                    p0[o * r + c] = -l.up[o * l.rank + 2 * c + 1] * scale
                }
            }
            let ones = [Float](repeating: 1, count: r)
            return .ortho(Ortho(q: q, p: p, lambda: ones, q0: q0, p0: p0, lambda0: ones, rank: r, inFeatures: l.inFeatures, outFeatures: l.outFeatures))
        }
        result.componentsPerRank = 1
        return result
    }

    /// SVD compression of each module's ΔW to `rank` (or less where the module is smaller).
    /// A DoRA or (IA)³ module's ΔW = W' − W is formed from `base` and compressed like any other.
    static func compress(_ adapter: Adapter, rank: Int, base: BaseWeights? = nil) throws -> (Adapter, [Double], Double) {
        var factors: [Factors] = [], modules: [ModuleInfo] = [], errors: [Double] = []
        var droppedEnergy = 0.0, totalEnergy = 0.0
        for (index, stored) in adapter.modules.enumerated() {
            var module = stored
            let svd: LowRankSVD
            if let dora = try adapter.dora(index), let base {
                svd = try base.differenceSVD(dora, module: module)
            } else if let ia3 = try adapter.ia3(index), let base {
                // The vector covers one dimension; the checkpoint's layer gives the other.
                module = try base.resolvedIA3(module)
                svd = try base.differenceSVD(ia3, module: module)
            } else {
                svd = try LowRankSVD.of(try adapter.factors(index), module: module.name, from: adapter.origin)
            }
            // Every module gets the asked rank where its shape allows (zero components pad a smaller ΔW), as
            // kohya's resize writes one rank throughout.
            let target = min(rank, module.inFeatures, module.outFeatures)
            let keep = min(target, svd.rank)
            errors.append(svd.truncationError(keep: keep))
            droppedEnergy += svd.s.dropFirst(keep).reduce(0) { $0 + $1 * $1 }
            totalEnergy += svd.energy
            factors.append(.lowRank(padded(lowRank(from: svd, keep: keep), to: target)))
            var info = module
            info.rank = target
            info.isOrtho = false
            info.alpha = nil
            info.magnitudeAxis = nil
            info.ia3 = nil
            modules.append(info)
        }
        var result = adapter
        result.modules = modules
        result.replaceSource(InMemoryFactors(factors))
        return (result, errors, totalEnergy > 0 ? (droppedEnergy / totalEnergy).squareRoot() : 0)
    }

    /// up = U·diag(S), down = Vᵀ, scale 1 (as kohya's SVD tools write).
    static func lowRank(from svd: LowRankSVD, keep: Int) -> LowRank {
        let r = svd.rank
        var up = [Float](repeating: 0, count: svd.m * keep)
        for o in 0..<svd.m { for c in 0..<keep { up[o * keep + c] = Float(svd.u[o * r + c] * svd.s[c]) } }
        let down = svd.vt.prefix(keep * svd.n).map(Float.init)
        return LowRank(down: Array(down), up: up, rank: keep, inFeatures: svd.n, outFeatures: svd.m, alpha: Float(keep))
    }

    /// A standard LoRA as a T-LoRA: components ordered by singular value, the given schedule attached.
    static func orderBySingularValue(_ adapter: Adapter, flags: ScheduleFlags, minRank: Int) throws -> Adapter {
        let ranks = Set(adapter.modules.map(\.rank))
        guard ranks.count == 1, let rank = ranks.first else {
            throw AdapterError("one schedule cannot cover modules of different ranks (\(ranks.sorted().map(String.init).joined(separator: ", "))): resize to one rank first (tlkit convert --rank N)")
        }
        let schedule = RankSchedule(maxRank: flags.maxRank ?? rank, minRank: minRank, rankAlpha: flags.rankAlpha ?? 1)
        do { try schedule.validate() } catch { throw ConversionUsageError(message: "\(error)") }
        guard schedule.maxRank == rank else {
            throw ConversionUsageError(message: "--max-rank \(schedule.maxRank) differs from the adapter's rank \(rank)")
        }
        var result = adapter
        result.modules = adapter.modules.map { var m = $0; m.alpha = nil; return m }
        let names = adapter.modules.map(\.name), origin = adapter.origin
        result.replaceSource(TransformedFactors(base: adapter) { index, factors in
            let svd = try LowRankSVD.of(factors, module: names[index], from: origin)
            var l = lowRank(from: svd, keep: svd.rank)
            if l.rank < factors.rank {  // a rank-deficient module: pad with zero components
                l = padded(l, to: factors.rank)
            }
            return .lowRank(l)
        })
        result.schedule = schedule
        result.componentsPerRank = 1
        result.method = .vanillaTlora
        return result
    }

    static func padded(_ l: LowRank, to rank: Int) -> LowRank {
        var up = [Float](repeating: 0, count: l.outFeatures * rank)
        for o in 0..<l.outFeatures { for c in 0..<l.rank { up[o * rank + c] = l.up[o * l.rank + c] } }
        let down = l.down + [Float](repeating: 0, count: (rank - l.rank) * l.inFeatures)
        return LowRank(down: down, up: up, rank: rank, inFeatures: l.inFeatures, outFeatures: l.outFeatures, alpha: Float(rank))
    }
}

/// Factors computed from another adapter's, one module at a time.
struct TransformedFactors: FactorSource {
    let base: Adapter
    let transform: @Sendable (Int, Factors) throws -> Factors
    func factors(_ index: Int) throws -> Factors { try transform(index, try base.factors(index)) }
}
