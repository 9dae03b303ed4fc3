import CBLAS
import SDXL

/// A LoRA from the weight difference of two SDXL checkpoints (any layouts and dtypes), one module at a time.
public enum AdapterExtract {
    public enum Modules: String, Sendable { case attention, all }

    public struct ModuleResult: Sendable {
        public let module: String
        public let rank: Int
        public let retainedEnergy: Double
    }

    public static func extract(base: SDXLModel, tuned: SDXLModel, target: AdapterResize.Target, modules selection: Modules,
                               policy: NonFinitePolicy = .refuse,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> (Adapter, [ModuleResult], [String]) {
        guard base.unetConfig == tuned.unetConfig else {
            throw AdapterError("the checkpoints have different UNet configurations: \(base.path) vs \(tuned.path)")
        }
        let candidates = ModuleNames.canonicalModules.filter { name in
            selection == .all || ["to_q", "to_k", "to_v", "to_out.0"].contains { name.hasSuffix(".attn1." + $0) || name.hasSuffix(".attn2." + $0) }
        }
        var factors: [Factors] = [], modules: [ModuleInfo] = [], results: [ModuleResult] = [], unchanged: [String] = []
        for (n, name) in candidates.enumerated() {
            progress(n, candidates.count)
            let (componentName, path) = ModuleNames.split(name)
            guard let component = Component(rawValue: componentName), let shape = base.shape(component, path + ".weight"),
                  shape.count == 2, tuned.shape(component, path + ".weight") == shape else { continue }
            let w0 = try base.floats(component, path + ".weight"), w1 = try tuned.floats(component, path + ".weight")
            try policy.admit(w0, file: base.path, tensor: name + ".weight")
            try policy.admit(w1, file: tuned.path, tensor: name + ".weight")
            let delta = zip(w1, w0).map { Double($0) - Double($1) }
            guard delta.contains(where: { $0 != 0 }) else { unchanged.append(name); continue }
            let (out, width) = (shape[0], shape[1])
            let decomposed: ([Double], [Double], [Double])
            do { decomposed = try LowRankSVD.svd(delta, rows: out, cols: width) } catch {
                throw AdapterError("\(tuned.path): module \(name): \(error)")
            }
            let (u, s, vt) = decomposed
            let rank: Int
            switch target {
            case let .rank(r):
                guard r <= min(out, width) else { throw AdapterError("--rank \(r) is above the width of \(name) ([\(out), \(width)])") }
                rank = r
            case let .energy(f): rank = max(1, AdapterResize.smallestRank(s, keeping: f))
            }
            let full = LowRankSVD(u: u, s: s, vt: vt, m: out, n: width)
            let energy = full.energy
            results.append(ModuleResult(module: name, rank: rank, retainedEnergy: energy == 0 ? 1 : s.prefix(rank).reduce(0) { $0 + $1 * $1 } / energy))
            factors.append(.lowRank(Converter.lowRank(from: full, keep: rank)))
            modules.append(ModuleInfo(name: name, isOrtho: false, rank: rank, inFeatures: width, outFeatures: out, dtype: .f16))
        }
        guard !modules.isEmpty else { throw AdapterError("the checkpoints do not differ in any \(selection == .all ? "" : "attention ")module tlkit adapts") }
        let adapter = Adapter(format: .kohya, method: nil, schedule: nil, componentsPerRank: 1, modules: modules, metadata: [:],
                              source: InMemoryFactors(factors))
        return (adapter, results, unchanged)
    }
}

extension LowRankSVD {
    init(u: [Double], s: [Double], vt: [Double], m: Int, n: Int) {
        self.u = u
        self.s = s
        self.vt = vt
        self.m = m
        self.n = n
    }
}
