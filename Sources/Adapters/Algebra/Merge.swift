import Foundation
import SafeTensors

/// Weighted sums of adapters: ΔW = Σ wᵢ ΔWᵢ, exactly (concatenated factors) or compressed by SVD.
public enum AdapterMerge {
    public enum Method: String, Sendable { case concat, svd }

    public struct Input: Sendable {
        public let adapter: Adapter
        public let weight: Double
        public let label: String
        public init(adapter: Adapter, weight: Double, label: String) {
            self.adapter = adapter
            self.weight = weight
            self.label = label
        }
    }

    public struct Result: Sendable {
        public let adapter: Adapter
        /// Relative Frobenius error per module (svd), in module order.
        public let errors: [Double]?
        public let overallError: Double?
    }

    /// Merges; T-LoRA inputs must share one schedule (their components of equal mask index are grouped)
    /// unless `atTimestep` bakes each input first.
    public static func merge(_ inputs: [Input], method: Method, rank: Int?, atTimestep: Double?) throws -> Result {
        guard !inputs.isEmpty else { throw AdapterError("nothing to merge") }
        var adapters = inputs.map(\.adapter)
        // Adapters of different bases have nothing to add up (an unknown base goes with any).
        let bases = zip(inputs, adapters).compactMap { input, a in a.base.base.map { (input.label, $0) } }
        if let first = bases.first, let other = bases.first(where: { $0.1 != first.1 }) {
            throw AdapterError("\(first.0) is a LoRA for \(first.1.displayName) but \(other.0) is for \(other.1.displayName): adapters of different base models cannot be merged")
        }
        if let t = atTimestep {
            for (i, a) in adapters.enumerated() where a.schedule != nil { adapters[i] = Converter.bake(a, at: t) }
        }
        let schedules = adapters.map(\.schedule)
        let scheduled = schedules.contains { $0 != nil }
        if scheduled {
            guard Set(schedules.map { $0.map { "\($0)" } ?? "none" }).count == 1 else {
                throw AdapterError("the adapters have different timestep schedules (or some have none): merge them as they act at one timestep with --at-timestep T")
            }
        }
        // Fold ortho modules so every input is low-rank, then scale each by its weight.
        adapters = adapters.map { $0.modules.contains(where: \.isOrtho) ? Converter.foldOrtho($0) : $0 }
        // A fused FLUX.1/SD3 file and a separate one: pair their modules per part.
        adapters = try FusedLayout.commonLayout(adapters)

        if method == .svd, scheduled {
            throw AdapterError("--method svd mixes the masked components of a T-LoRA: give --at-timestep T, or use --method concat")
        }
        var names: [String] = []
        var shapes: [String: (Int, Int)] = [:]
        var dtypes: [String: DType] = [:]
        var kernels: [String: [Int]] = [:]
        for a in adapters {
            for m in a.modules where shapes[m.name] == nil {
                names.append(m.name)
                shapes[m.name] = (m.outFeatures, m.inFeatures)
                dtypes[m.name] = m.dtype
                kernels[m.name] = m.kernel
            }
            for m in a.modules where shapes[m.name]!.0 != m.outFeatures || shapes[m.name]!.1 != m.inFeatures {
                throw AdapterError("\(m.name): incompatible shapes across inputs ([\(m.outFeatures), \(m.inFeatures)] vs [\(shapes[m.name]!.0), \(shapes[m.name]!.1)]): adapters for different base architectures?")
            }
        }
        let c = adapters.map(\.componentsPerRank)
        let maxRank = schedules.first.flatMap { $0?.maxRank }
        var factors: [Factors] = [], modules: [ModuleInfo] = [], errors: [Double] = []
        var dropped = 0.0, total = 0.0
        for name in names {
            var parts: [(LowRank, Double, Int)] = []   // factors, weight, components per rank
            for (k, a) in adapters.enumerated() {
                guard let index = a.modules.firstIndex(where: { $0.name == name }), case let .lowRank(l) = try a.factors(index) else { continue }
                parts.append((l, inputs[k].weight, c[k]))
            }
            let (out, width) = shapes[name]!
            var merged = concatenate(parts, out: out, in: width, groupedBy: scheduled ? maxRank : nil)
            if method == .svd {
                guard let rank else { throw AdapterError("--method svd needs --rank") }
                let svd: LowRankSVD
                do { svd = try LowRankSVD(a: merged.up.map(Double.init), b: merged.down.map(Double.init), m: out, k: merged.rank, n: width) } catch {
                    throw AdapterError("\(name): \(error)")
                }
                let target = min(rank, out, width), keep = min(target, svd.rank)
                errors.append(svd.truncationError(keep: keep))
                dropped += svd.s.dropFirst(keep).reduce(0) { $0 + $1 * $1 }
                total += svd.energy
                merged = Converter.padded(Converter.lowRank(from: svd, keep: keep), to: target)
            }
            factors.append(.lowRank(merged))
            modules.append(ModuleInfo(name: name, isOrtho: false, rank: merged.rank, inFeatures: width, outFeatures: out, dtype: dtypes[name]!,
                                      kernel: kernels[name]!))
        }
        var result = Adapter(format: adapters[0].format, method: method == .svd ? nil : adapters[0].method,
                             schedule: method == .svd ? nil : schedules.first ?? nil,
                             componentsPerRank: method == .svd || !scheduled ? 1 : c.reduce(0, +),
                             modules: modules, metadata: [:], source: InMemoryFactors(factors))
        result.base = adapters.first { $0.base.base != nil }?.base ?? adapters[0].base
        result.metadata["tlora.merged_from"] = inputs.map { "\($0.label):\(Converter.number($0.weight))" }.joined(separator: ", ")
        if let t = atTimestep { result.metadata["tlora.baked_at_timestep"] = Converter.number(t) }
        return Result(adapter: result, errors: method == .svd ? errors : nil,
                      overallError: method == .svd ? (total > 0 ? (dropped / total).squareRoot() : 0) : nil)
    }

    /// [w₁·s₁·U₁ | w₂·s₂·U₂ | …] · [D₁; D₂; …] with scale 1. With a schedule (max rank R), components of
    /// equal mask index are grouped: index i holds input 1's c₁ components, then input 2's c₂, …
    static func concatenate(_ parts: [(LowRank, Double, Int)], out: Int, in width: Int, groupedBy maxRank: Int?) -> LowRank {
        // Column order: (part, component) pairs.
        var order: [(part: Int, component: Int)] = []
        if let maxRank {
            for i in 0..<maxRank {
                for (p, part) in parts.enumerated() {
                    for j in 0..<part.2 where i * part.2 + j < part.0.rank { order.append((p, i * part.2 + j)) }
                }
            }
        } else {
            for (p, part) in parts.enumerated() { for j in 0..<part.0.rank { order.append((p, j)) } }
        }
        let r = order.count
        var up = [Float](repeating: 0, count: out * r), down = [Float](repeating: 0, count: r * width)
        for (column, entry) in order.enumerated() {
            let (l, weight, _) = parts[entry.part]
            let factor = Float(weight) * l.scale
            for o in 0..<out { up[o * r + column] = l.up[o * l.rank + entry.component] * factor }
            for i in 0..<width { down[column * width + i] = l.down[entry.component * width + i] }
        }
        return LowRank(down: down, up: up, rank: r, inFeatures: width, outFeatures: out, alpha: Float(r))
    }
}
