import BLASThreads
import CBLAS
import Dispatch
import Foundation

/// Near-duplicate adapters among many: pairs whose whole ΔW (all modules, unmasked) have a cosine at
/// or above a threshold, found without comparing every pair's factors.
///
/// Each adapter gets a signature from one pass over its factors, and only pairs whose signatures pass
/// two tests are compared through their factors (`AdapterDiff.compare`):
/// - its per-module norms ‖ΔWₘ‖ (`AdapterDiff.norms`). By Cauchy–Schwarz, ⟨ΔA, ΔB⟩ = Σₘ ⟨ΔAₘ, ΔBₘ⟩ ≤
///   Σₘ ‖ΔAₘ‖·‖ΔBₘ‖, and ‖ΔA‖ is the norm of its norm vector, so the cosine of two norm vectors bounds
///   the cosine of the adapters from above: a pair below the threshold there cannot reach it.
/// - a sketch: Rₘᵀ·ΔWₘ·Xₘ for every module, with Rₘ [out, 2] and Xₘ [in, 2] Gaussian, drawn from the
///   module's name (the same for every adapter), computed as (RᵀU)(DX) without forming ΔW. The sketches'
///   inner product estimates ⟨ΔA, ΔB⟩ without bias; norms alone cannot tell apart adapters whose
///   modules have alike norms (any two random LoRAs of one layout). A pair is dropped only when its
///   sketch cosine is more than `sketchMargin` below the threshold: a scaled copy sketches to cosine 1
///   exactly, and the estimate of a pair at 0.99 strays that far only by rare chance (for adapters of a
///   handful of modules; the more modules, the closer the estimate).
public enum NearDuplicates {
    /// How far below the threshold a sketch cosine may fall and its pair still be compared.
    public static let sketchMargin = 0.1

    /// An adapter's per-module ‖ΔW‖ and sketch (a module missing from the other adapter counts as zero there).
    public struct Signature: Sendable {
        public let norms: [String: Double]
        public let sketches: [String: [Double]]
        public var total: Double { norms.values.reduce(0) { $0 + $1 * $1 }.squareRoot() }

        public init(norms: [String: Double], sketches: [String: [Double]]) {
            self.norms = norms
            self.sketches = sketches
        }
    }

    /// Side of each module's sketch (Rᵀ ΔW X is side × side).
    static let side = 2

    /// The signature of `a`; NaN norms mark modules holding NaN or infinity.
    public static func signature(_ a: Adapter) throws -> Signature {
        var sketches: [String: [Double]] = [:]
        for (i, module) in a.modules.enumerated() {
            let f = try a.factors(i)
            sketches[module.name] = sketch(f, keep: a.keptComponents(rank: f.rank, at: 0), module: module.name)
        }
        return Signature(norms: try AdapterDiff.norms(a), sketches: sketches)
    }

    /// (RᵀU)(DX) for one module.
    static func sketch(_ f: Factors, keep: Int, module: String) -> [Double] {
        let out = f.outFeatures, width = f.inFeatures, k = Fold.components(f, keep: keep), p = side
        var u = [Double](repeating: 0, count: out * max(k, 1)), d = [Double](repeating: 0, count: max(k, 1) * width)
        u.withUnsafeMutableBufferPointer { up in d.withUnsafeMutableBufferPointer { down in
            Fold.write(f, keep: keep, up: up.baseAddress!, upStride: max(k, 1), down: down.baseAddress!)
        } }
        var random = ProbeRandom(module: module, out: out, width: width)
        let r = (0..<(out * p)).map { _ in random.normal() }, x = (0..<(width * p)).map { _ in random.normal() }
        var ru = [Double](repeating: 0, count: p * k), dx = [Double](repeating: 0, count: k * p)
        for a in 0..<p { for c in 0..<k { var s = 0.0; for o in 0..<out { s += r[o * p + a] * u[o * max(k, 1) + c] }; ru[a * k + c] = s } }
        for c in 0..<k { for b in 0..<p { var s = 0.0; for i in 0..<width { s += d[c * width + i] * x[i * p + b] }; dx[c * p + b] = s } }
        var result = [Double](repeating: 0, count: p * p)
        for a in 0..<p { for b in 0..<p { var s = 0.0; for c in 0..<k { s += ru[a * k + c] * dx[c * p + b] }; result[a * p + b] = s } }
        return result
    }

    /// The index pairs (i < j) that share a module and whose signatures allow a cosine of `threshold`.
    public static func candidates(_ signatures: [Signature], threshold: Double) -> [(Int, Int)] {
        let n = signatures.count
        guard n > 1 else { return [] }
        let norms = cosines(signatures.map { signature in signature.norms.mapValues { [$0] } })
        let sketches = cosines(signatures.map(\.sketches))
        var out: [(Int, Int)] = []
        // A little below the threshold: the bound is computed in floating point too.
        for i in 0..<n {
            for j in (i + 1)..<n where norms[i * n + j] >= threshold - 1e-9 && sketches[i * n + j] >= threshold - sketchMargin {
                if signatures[i].norms.keys.contains(where: { signatures[j].norms[$0] != nil }) { out.append((i, j)) }
            }
        }
        return out
    }

    /// Every pair's cosine of the vectors that lay each entry's per-module values side by side (upper
    /// triangle of an n × n matrix; zero for a zero vector).
    static func cosines(_ vectors: [[String: [Double]]]) -> [Double] {
        let n = vectors.count
        var column: [String: Int] = [:]
        var width = 0
        for v in vectors { for (name, values) in v.sorted(by: { $0.key < $1.key }) where column[name] == nil { column[name] = width; width += values.count } }
        var gram = [Double](repeating: 0, count: n * n)
        guard width > 0 else { return gram }
        var rows = [Double](repeating: 0, count: n * width)
        for (i, v) in vectors.enumerated() {
            for (name, values) in v { for (k, value) in values.enumerated() { rows[i * width + column[name]! + k] = value } }
            let length = rows[(i * width)..<((i + 1) * width)].reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard length > 0, length.isFinite else { continue }
            for k in 0..<width { rows[i * width + k] /= length }
        }
        BLASThreads.serial {
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(width), 1, rows, Int32(width), 0, &gram, Int32(n))
        }
        return gram
    }

    /// The cosine of the whole ΔW of `a` and `b` (modules of only one side count as zero on the
    /// other) and how many modules they share; nil when they share none, a shared module differs in
    /// shape, or either holds NaN or infinity.
    public static func cosine(_ a: Adapter, _ signatureA: Signature, _ b: Adapter, _ signatureB: Signature) -> (cosine: Double, modules: Int)? {
        guard let compared = try? AdapterDiff.compare(a, b, timesteps: [nil]) else { return nil }
        let (results, summary) = compared
        guard summary.nonFinite.isEmpty, !results.isEmpty else { return nil }
        let scale = signatureA.total * signatureB.total
        guard scale > 0, scale.isFinite else { return nil }
        let inner = results.reduce(0.0) { $0 + ($1.cosine ?? 0) * $1.normA * $1.normB }
        return (inner / scale, results.count)
    }
}

extension AdapterDiff {
    /// ‖ΔW‖ of every module (unmasked), from the same Gram products `compare` uses; NaN for a module
    /// holding NaN or infinity.
    public static func norms(_ a: Adapter) throws -> [String: Double] {
        let flagged = Set(a.nonFinite.map(\.module))
        let slots = ConcurrentSlots<Result<Double, Error>>(count: a.modules.count)
        BLASThreads.serial {
            DispatchQueue.concurrentPerform(iterations: a.modules.count) { i in
                slots.set(i, Result {
                    let f = try a.factors(i)
                    let keep = a.keptComponents(rank: f.rank, at: 0)
                    let (squared, _, _) = innerProducts(f, keep: keep, f, keep: keep)
                    return flagged.contains(a.modules[i].name) || !squared.isFinite ? .nan : max(0, squared).squareRoot()
                })
            }
        }
        var out: [String: Double] = [:]
        for (module, slot) in zip(a.modules, slots.values) { out[module.name] = try slot!.get() }
        return out
    }
}

/// The Gaussian probes of one module's sketch: SplitMix64 seeded from the module's name and shape
/// (FNV-1a), Box–Muller, so every adapter of a layout gets the same ones on every machine.
struct ProbeRandom {
    private var state: UInt64
    private var spare: Double?

    init(module: String, out: Int, width: Int) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in Array("\(module)|\(out)|\(width)".utf8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        state = hash
    }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func normal() -> Double {
        if let spare { self.spare = nil; return spare }
        let u1 = (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992, u2 = Double(next() >> 11) / 9_007_199_254_740_992
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        spare = radius * sin(2 * Double.pi * u2)
        return radius * cos(2 * Double.pi * u2)
    }
}
