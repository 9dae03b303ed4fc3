/// Lower ranks by SVD per module, to a rank or to a retained share of the Frobenius energy.
public enum AdapterResize {
    public enum Target: Sendable {
        case rank(Int)
        /// Smallest rank keeping at least this fraction (0 < F ≤ 1) of ‖ΔW‖²_F, per module.
        case energy(Double)
    }

    public struct ModuleResult: Sendable {
        public let module: String
        public let rankIn: Int
        public let rankOut: Int
        /// Fraction of ‖ΔW‖²_F kept.
        public let retainedEnergy: Double
    }

    /// T-LoRA inputs are refused: an SVD mixes the components that the timestep mask keeps apart, so the
    /// schedule would no longer describe the adapter. Bake first (`convert --at-timestep`) or resize the
    /// standard LoRA before attaching a schedule.
    public static func resize(_ adapter: Adapter, to target: Target) throws -> (Adapter, [ModuleResult], Double) {
        guard adapter.schedule == nil else {
            throw AdapterError("resizing a T-LoRA would mix the components its timestep mask keeps apart: bake it at one timestep first (tlkit convert --at-timestep T), or resize the standard LoRA and then attach a schedule (tlkit convert --to tlora --min-rank M)")
        }
        if case let .energy(f) = target, !(f > 0 && f <= 1) { throw AdapterError("--energy must be in (0, 1], got \(f)") }
        if case let .rank(r) = target, r < 1 { throw AdapterError("--rank must be at least 1") }
        var factors: [Factors] = [], modules: [ModuleInfo] = [], results: [ModuleResult] = []
        var kept = 0.0, total = 0.0
        for (index, module) in adapter.modules.enumerated() {
            let f = try adapter.factors(index)
            let svd = try LowRankSVD.of(f, module: module.name, from: adapter.origin)
            let rank: Int
            switch target {
            case let .rank(r):
                guard r <= min(module.inFeatures, module.outFeatures) else {
                    throw AdapterError("--rank \(r) is above the width of \(module.name) ([\(module.outFeatures), \(module.inFeatures)])")
                }
                rank = min(r, module.rank)
            case let .energy(fraction):
                rank = max(1, smallestRank(svd.s, keeping: fraction))
            }
            let keep = min(rank, svd.rank)
            let energy = svd.energy
            let retained = energy == 0 ? 1 : svd.s.prefix(keep).reduce(0) { $0 + $1 * $1 } / energy
            kept += retained * energy
            total += energy
            factors.append(.lowRank(Converter.padded(Converter.lowRank(from: svd, keep: keep), to: rank)))
            var info = module
            info.rank = rank
            info.isOrtho = false
            info.alpha = nil
            modules.append(info)
            results.append(ModuleResult(module: module.name, rankIn: module.rank, rankOut: rank, retainedEnergy: retained))
        }
        var result = adapter
        result.modules = modules
        result.replaceSource(InMemoryFactors(factors))
        return (result, results, total == 0 ? 1 : kept / total)
    }

    static func smallestRank(_ s: [Double], keeping fraction: Double) -> Int {
        let total = s.reduce(0) { $0 + $1 * $1 }
        guard total > 0 else { return 0 }
        var sum = 0.0
        for (i, value) in s.enumerated() {
            sum += value * value
            if sum >= fraction * total * (1 - 1e-12) { return i + 1 }
        }
        return s.count
    }
}
