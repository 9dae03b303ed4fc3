import CBLAS
import Dispatch

/// Module-by-module comparison of two adapters from their factors: norms and inner products through
/// r × r Gram matrices in Float64, never forming out × in matrices.
public enum AdapterDiff {
    public struct ModuleResult: Sendable {
        public let module: String
        public let normA: Double
        public let normB: Double
        public let relativeDifference: Double
        /// nil when either delta is zero.
        public let cosine: Double?
        public let parameters: Int
        public let timestep: Double?
    }

    public struct Summary: Sendable {
        public let relativeDifference: Double
        public let cosine: Double?
        public let onlyInA: [String]
        public let onlyInB: [String]
        public let metadataDifferences: [(key: String, a: String?, b: String?)]
    }

    /// Compares every shared module at each timestep (nil: unmasked / t = 0 behaviour).
    public static func compare(_ a: Adapter, _ b: Adapter, timesteps: [Double?]) throws -> ([ModuleResult], Summary) {
        let indexB = Dictionary(uniqueKeysWithValues: b.modules.enumerated().map { ($1.name, $0) })
        let namesA = Set(a.modules.map(\.name))
        // Modules are independent: compare them on all cores, each with single-threaded BLAS (the
        // products are thin, and OpenBLAS's own threads only spin on them).
        let pairs = a.modules.enumerated().compactMap { i, module in indexB[module.name].map { (i, $0) } }
        let slots = ResultSlots(count: pairs.count)
        let saved = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(saved) }
        DispatchQueue.concurrentPerform(iterations: pairs.count) { n in
            let (i, j) = pairs[n]
            slots.set(n, Result { try compareModule(a, i, b, j, timesteps: timesteps) })
        }
        var results: [ModuleResult] = []
        for outcome in slots.values { results += try outcome!.get() }
        let weight = results.reduce(0) { $0 + Double($1.parameters) }
        let meanDifference = weight == 0 ? 0 : results.reduce(0) { $0 + $1.relativeDifference * Double($1.parameters) } / weight
        let withCosine = results.filter { $0.cosine != nil }
        let cosineWeight = withCosine.reduce(0) { $0 + Double($1.parameters) }
        let meanCosine = cosineWeight == 0 ? nil : withCosine.reduce(0) { $0 + $1.cosine! * Double($1.parameters) } / cosineWeight
        var metadata: [(String, String?, String?)] = []
        for key in Set(a.metadata.keys).union(b.metadata.keys).sorted() where a.metadata[key] != b.metadata[key] {
            metadata.append((key, a.metadata[key], b.metadata[key]))
        }
        let summary = Summary(relativeDifference: meanDifference, cosine: meanCosine,
                              onlyInA: a.modules.map(\.name).filter { indexB[$0] == nil },
                              onlyInB: b.modules.map(\.name).filter { !namesA.contains($0) },
                              metadataDifferences: metadata)
        return (results, summary)
    }

    static func compareModule(_ a: Adapter, _ i: Int, _ b: Adapter, _ j: Int, timesteps: [Double?]) throws -> [ModuleResult] {
        let module = a.modules[i]
        let fa = try a.factors(i), fb = try b.factors(j)
        guard fa.inFeatures == fb.inFeatures, fa.outFeatures == fb.outFeatures else {
            throw AdapterError("\(module.name): shapes differ ([\(fa.outFeatures), \(fa.inFeatures)] vs [\(fb.outFeatures), \(fb.inFeatures)])")
        }
        var results: [ModuleResult] = []
        for t in timesteps {
            let (ua, da, ka) = Fold.product(fa, keep: a.keptComponents(rank: fa.rank, at: t ?? 0))
            let (ub, db, kb) = Fold.product(fb, keep: b.keptComponents(rank: fb.rank, at: t ?? 0))
            // The same routine for all three products, so that diff(A, A) is exactly zero.
            let aa = inner(ua, da, ka, ua, da, ka, out: fa.outFeatures, in: fa.inFeatures)
            let bb = inner(ub, db, kb, ub, db, kb, out: fa.outFeatures, in: fa.inFeatures)
            let ab = inner(ua, da, ka, ub, db, kb, out: fa.outFeatures, in: fa.inFeatures)
            let normA = max(0, aa).squareRoot(), normB = max(0, bb).squareRoot()
            let distance = max(0, aa + bb - 2 * ab).squareRoot()
            let scale = max(normA, normB)
            results.append(ModuleResult(module: module.name, normA: normA, normB: normB,
                                        relativeDifference: scale == 0 ? 0 : distance / scale,
                                        cosine: normA == 0 || normB == 0 ? nil : ab / (normA * normB),
                                        parameters: fa.inFeatures * fa.outFeatures, timestep: t))
        }
        return results
    }

    /// ⟨U1·D1, U2·D2⟩_F = tr((U1ᵀU2)(D2·D1ᵀ)), with U [out, k], D [k, in].
    static func inner(_ u1: [Double], _ d1: [Double], _ k1: Int, _ u2: [Double], _ d2: [Double], _ k2: Int, out: Int, in width: Int) -> Double {
        guard k1 > 0, k2 > 0 else { return 0 }
        var gu = [Double](repeating: 0, count: k1 * k2)   // U1ᵀ U2 [k1, k2]
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k1), Int32(k2), Int32(out), 1, u1, Int32(k1), u2, Int32(k2), 0, &gu, Int32(k2))
        var gd = [Double](repeating: 0, count: k1 * k2)   // D1 D2ᵀ [k1, k2]
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(k1), Int32(k2), Int32(width), 1, d1, Int32(width), d2, Int32(width), 0, &gd, Int32(k2))
        var sum = 0.0
        for i in 0..<(k1 * k2) { sum += gu[i] * gd[i] }
        return sum
    }
}

/// Per-index results written from concurrent workers.
final class ResultSlots: @unchecked Sendable {
    private(set) var values: [Result<[AdapterDiff.ModuleResult], Error>?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<[AdapterDiff.ModuleResult], Error>) {
        lock.lock()
        values[index] = value
        lock.unlock()
    }
}

import Foundation
