import Foundation
import SafeTensors
import SDXL

/// What a LyCORIS T-LoRA file stores for one module: Q [R, in], P [out, R], λ [R] and alpha. The frozen
/// part (P0, λ0, Q0) is not stored: LyCORIS' loader recomputes it from the base weight (docs/families.md,
/// "LyCORIS T-LoRA").
public struct LycorisTLoRAFactors: Sendable, Equatable {
    public var q: [Float]
    public var p: [Float]
    public var lambda: [Float]
    /// LyCORIS replaces a missing or zero alpha by the rank (scale 1).
    public var alpha: Float
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public var scale: Float { alpha / Float(rank) }
}


public enum LycorisTLoRA {
    static let suffixes: [(String, FactorRole)] = [(".q_layer.weight", .q), (".p_layer.weight", .p), (".lambda_layer", .lambda)]

    /// A LyCORIS T-LoRA tensor: the official layout's suffixes after a kohya module name (which has no
    /// dots; the official layout's processor names do). Its `.alpha` then joins the same kohya module.
    static func grouping(_ name: String) -> (AdapterFormat, String, FactorRole)? {
        guard let (suffix, role) = suffixes.first(where: { name.hasSuffix($0.0) }),
              !name.dropLast(suffix.count).contains(".") else { return nil }
        return (.kohya, suffix, role)
    }

    /// Whether grouped keys hold LyCORIS T-LoRA modules (Q without a frozen Q0, kohya names).
    static func isLycoris(_ keys: AdapterKeys) -> Bool {
        keys.format == .kohya && keys.modules.contains { $0.tensors[.q] != nil && $0.tensors[.q0] == nil }
    }

    public static func refusal(module: String) -> String {
        "module \(module) is a LyCORIS T-LoRA module: LyCORIS stores no frozen part (P0, λ0, Q0) and recomputes it from an SVD of the base weight; give --base MODEL (the SDXL checkpoint it was trained on) to tlkit convert"
    }

    /// The module's facts from the header: Q [R, in], P [out, R], λ with R entries, an optional scalar alpha.
    static func describe(_ module: ModuleKeys, canonical: String, file: SafeTensorsFile, path: String) throws -> ModuleInfo {
        func shape(_ role: FactorRole) throws -> [Int] {
            guard let name = module.tensors[role], let info = file.header.tensor(named: name) else {
                throw AdapterError("\(path): LyCORIS T-LoRA module \(module.fileName) has no \(role == .lambda ? "lambda_layer" : role == .q ? "q_layer.weight" : "p_layer.weight") tensor")
            }
            guard info.dtype.isConvertibleToFloat else { throw AdapterError("\(path): tensor \(name) has dtype \(info.dtype.rawValue), not a float type") }
            if let dimension = info.shape.first(where: { $0 > FactorLimits.maxDimension }) {
                throw AdapterError("\(path): tensor \(name) has shape \(info.shape): dimension \(dimension) exceeds \(FactorLimits.maxDimension)")
            }
            return info.shape
        }
        let q = try shape(.q), p = try shape(.p), lambda = try shape(.lambda)
        if q.count != 2 || p.count != 2 {
            // LyCORIS puts T-LoRA on convolutions as 1×1 kernels beside the layer's own kernel; not read.
            throw AdapterError("\(path): LyCORIS T-LoRA module \(module.fileName) has factors of shapes \(q) and \(p): T-LoRA on convolution layers is not supported (only linear layers)")
        }
        guard q[0] == p[1], lambda.reduce(1, *) == q[0], q[0] >= 1 else {
            throw AdapterError("\(path): LyCORIS T-LoRA module \(module.fileName): q_layer \(q), p_layer \(p) and lambda_layer \(lambda) do not share one rank")
        }
        let dtype = file.header.tensor(named: module.tensors[.q]!)!.dtype
        let alpha = try FileFactors.alpha(keys: module, rank: q[0], file: file, format: .kohya).map(Float.init)
        var info = ModuleInfo(name: canonical, isOrtho: true, rank: q[0], inFeatures: q[1], outFeatures: p[0], dtype: dtype,
                              alpha: alpha.flatMap { $0 == 0 ? nil : $0 } ?? Float(q[0]))
        info.frozenFromBase = true
        return info
    }

    /// The adapter with every LyCORIS T-LoRA module made a complete T-LoRA module: Q, P, λ from the file,
    /// P0, λ0, Q0 from the principal SVD of the base weight, and LyCORIS' scale alpha/R folded into λ and λ0.
    /// The ΔW at every mask is LyCORIS' own: s·(P diag(λ⊙m) Q − P0 diag(λ0⊙m) Q0).
    public static func resolve(_ adapter: Adapter, base: BaseWeights) -> Adapter {
        guard adapter.needsFrozenBase else { return adapter }
        let modules = adapter.modules.map { m -> ModuleInfo in
            var out = m
            if m.frozenFromBase { out.frozenFromBase = false; out.alpha = nil }
            return out
        }
        var result = adapter
        result.modules = modules
        result.replaceSource(ResolvedLycorisFactors(base: adapter, weights: base))
        return result
    }

    /// Tolerance of the frozen-part check, relative to the largest σ of the module: the Float32 SVDs of
    /// LyCORIS and tlkit differ by rounding only.
    static let frozenTolerance: Float = 1e-4

    /// A T-LoRA whose frozen part is the one LyCORIS would recompute from `base` (a T-LoRA read from
    /// LyCORIS, in any of tlkit's layouts), in LyCORIS' terms: alpha = s·R where λ0 = s·σ. Any other frozen
    /// part is refused, naming the module: LyCORIS would replace it on load. Computed module by module
    /// now (the alphas go into the header); only Q, P and λ are kept, so the result is for writing
    /// `--to lycoris-tlora` only (its frozen part is the base's, not held in memory: `q0`, `p0` empty, λ0 = σ).
    static func matchingBase(_ adapter: Adapter, base: BaseWeights) throws -> Adapter {
        var modules = adapter.modules, factors: [Factors] = []
        for (index, info) in adapter.modules.enumerated() {
            guard case let .ortho(o) = try adapter.factors(index), !info.isConvolution else {
                throw AdapterError("\(info.name): a LyCORIS T-LoRA holds only T-LoRA (ortho) modules of linear layers")
            }
            let (u, s, vt) = try base.principal(info, rank: o.rank)
            let scale = try frozenScale(o, u: u, s: s, vt: vt, module: info.name)
            modules[index].alpha = scale * Float(o.rank)
            factors.append(.ortho(Ortho(q: o.q, p: o.p, lambda: o.lambda, q0: [], p0: [], lambda0: s,
                                        rank: o.rank, inFeatures: o.inFeatures, outFeatures: o.outFeatures)))
        }
        var result = adapter
        result.modules = modules
        result.componentsPerRank = 1
        result.replaceSource(InMemoryFactors(factors))
        return result
    }

    /// s with λ0_i = s·σ_i, after checking that each frozen component p0_i λ0_i q0_iᵀ equals s·u_i σ_i v_iᵀ
    /// (p0_i = ±u_i and q0_i = ±v_i with one sign, within `frozenTolerance`).
    static func frozenScale(_ o: Ortho, u: [Float], s: [Float], vt: [Float], module: String) throws -> Float {
        let (r, m, n) = (o.rank, o.outFeatures, o.inFeatures)
        var numerator = 0.0, denominator = 0.0
        for c in 0..<r {
            numerator += Double(o.lambda0[c]) * Double(s[c])
            denominator += Double(s[c]) * Double(s[c])
        }
        let scale = denominator > 0 ? Float(numerator / denominator) : 0
        let largest = s.max() ?? 0
        let refusal = "\(module): its frozen part (P0, λ0, Q0) is not the principal SVD of the base weight, which LyCORIS recomputes on load, so a LyCORIS T-LoRA cannot hold this module (only T-LoRAs read from LyCORIS convert back; --to kohya keeps any T-LoRA exactly, folded)"
        guard scale.isFinite, scale != 0 else { throw AdapterError(refusal) }
        for c in 0..<r where s[c] > 1e-6 || o.lambda0[c] != 0 {
            var pu = 0.0, qv = 0.0, pp = 0.0, qq = 0.0
            for row in 0..<m { pu += Double(o.p0[row * r + c]) * Double(u[row * r + c]); pp += Double(o.p0[row * r + c] * o.p0[row * r + c]) }
            for i in 0..<n { qv += Double(o.q0[c * n + i]) * Double(vt[c * n + i]); qq += Double(o.q0[c * n + i] * o.q0[c * n + i]) }
            // The component's size and direction: λ0·(p0·u)(q0·v) must be s·σ and p0, q0 unit vectors along u, v.
            let along = Double(o.lambda0[c]) * pu * qv, size = abs(Double(o.lambda0[c])) * (pp * qq).squareRoot()
            let tolerance = Double(frozenTolerance) * Double(abs(scale) * largest)
            guard abs(along - Double(scale * s[c])) <= tolerance, abs(size - abs(along)) <= tolerance else { throw AdapterError(refusal) }
        }
        return scale
    }

    /// A LyCORIS T-LoRA module's tensors under its kohya name: `q_layer.weight`, `p_layer.weight`,
    /// `lambda_layer` [1, R] (λ / s) and `alpha` (s·R, as `matchingBase` set it).
    static func tensors(_ module: ModuleInfo, index: Int, dtype: DType, base: BaseArchitecture?) throws -> [AdapterWriter.Planned] {
        guard module.isOrtho, !module.isConvolution, let alpha = module.alpha, let name = BaseNames.kohyaName(module.name, base: base) else {
            throw AdapterError("\(module.name): a LyCORIS T-LoRA holds only T-LoRA (ortho) modules of linear layers with kohya names")
        }
        let r = module.rank, scale = alpha / Float(r)
        typealias P = AdapterWriter.Planned
        return [
            P(spec: TensorSpec(name: name + ".q_layer.weight", dtype: dtype, shape: [r, module.inFeatures]), module: index) { f in
                guard case let .ortho(o) = f else { return [] }
                return o.q
            },
            P(spec: TensorSpec(name: name + ".p_layer.weight", dtype: dtype, shape: [module.outFeatures, r]), module: index) { f in
                guard case let .ortho(o) = f else { return [] }
                return o.p
            },
            P(spec: TensorSpec(name: name + ".lambda_layer", dtype: dtype, shape: [1, r]), module: index) { f in
                guard case let .ortho(o) = f else { return [] }
                return o.lambda.map { $0 / scale }
            },
            P(spec: TensorSpec(name: name + ".alpha", dtype: dtype, shape: []), module: index) { _ in [alpha] },
        ]
    }
}

/// Factors of LyCORIS T-LoRA modules completed from the base weight; other modules pass through.
struct ResolvedLycorisFactors: FactorSource {
    let base: Adapter
    let weights: BaseWeights

    func factors(_ index: Int) throws -> Factors {
        guard let stored = try base.lycorisTLoRA(index) else { return try base.factors(index) }
        let (u, s, vt) = try weights.principal(base.modules[index], rank: stored.rank)
        let scale = stored.scale
        return .ortho(Ortho(q: stored.q, p: stored.p, lambda: stored.lambda.map { $0 * scale }, q0: vt, p0: u,
                            lambda0: s.map { $0 * scale }, rank: stored.rank, inFeatures: stored.inFeatures, outFeatures: stored.outFeatures))
    }
}

extension BaseWeights {
    /// The first `rank` singular triplets of module's base weight W [out, in], as LyCORIS takes them
    /// (largest first; past min(out, in) zero vectors with σ = 1e-6). Computed in Float64 from W's Float32
    /// values; LyCORIS computes in Float32, and each product u_i σ_i v_iᵀ is the same whatever the signs.
    func principal(_ module: ModuleInfo, rank: Int) throws -> (u: [Float], s: [Float], vt: [Float]) {
        let w = try weight(of: module, for: "a LyCORIS T-LoRA module")
        let (m, n) = (module.outFeatures, module.inFeatures)
        let full: (u: [Double], s: [Double], vt: [Double])
        do { full = try LowRankSVD.svd(w.map(Double.init), rows: m, cols: n) } catch {
            throw AdapterError("\(module.name): the SVD of the base weight failed: \(error)")
        }
        let k = min(m, n), kept = min(rank, k)
        var u = [Float](repeating: 0, count: m * rank), vt = [Float](repeating: 0, count: rank * n)
        var s = [Float](repeating: 1e-6, count: rank)
        for c in 0..<kept {
            s[c] = Float(full.s[c])
            for o in 0..<m { u[o * rank + c] = Float(full.u[o * k + c]) }
            for i in 0..<n { vt[c * n + i] = Float(full.vt[c * n + i]) }
        }
        return (u, s, vt)
    }
}
