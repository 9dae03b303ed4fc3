import BLASThreads
import CBLAS
import Dispatch
import Foundation

/// Module-by-module comparison of two adapters from their factors: norms and inner products through
/// r × r Gram matrices in Float64, never forming out × in matrices.
public enum AdapterDiff {
    public struct ModuleResult: Sendable {
        public let module: String
        public let normA: Double
        public let normB: Double
        /// Infinity when either side is not finite.
        public let relativeDifference: Double
        /// nil when either delta is zero or not finite.
        public let cosine: Double?
        public let parameters: Int
        public let timestep: Double?
        /// False when either side holds NaN or infinity: such a module is never equal to anything.
        public let finite: Bool
    }

    public struct Summary: Sendable {
        public let relativeDifference: Double
        public let cosine: Double?
        public let onlyInA: [String]
        public let onlyInB: [String]
        public let metadataDifferences: [(key: String, a: String?, b: String?)]
        /// Modules holding NaN or infinity on either side (the files' findings, then results), sorted.
        public let nonFinite: [String]
    }

    /// Compares every shared module at each timestep (nil: unmasked / t = 0 behaviour).
    public static func compare(_ a: Adapter, _ b: Adapter, timesteps: [Double?]) throws -> ([ModuleResult], Summary) {
        let common = try FusedLayout.commonLayout([a, b])
        return try compareAligned(common[0], common[1], timesteps: timesteps)
    }

    static func compareAligned(_ a: Adapter, _ b: Adapter, timesteps: [Double?]) throws -> ([ModuleResult], Summary) {
        let indexB = Dictionary(uniqueKeysWithValues: b.modules.enumerated().map { ($1.name, $0) })
        let namesA = Set(a.modules.map(\.name))
        // Modules are independent: compare them on all cores, each with single-threaded BLAS (the
        // products are thin, and OpenBLAS's own threads only spin on them).
        let pairs = a.modules.enumerated().compactMap { i, module in indexB[module.name].map { (i, $0) } }
        let flagged = Set((a.nonFinite + b.nonFinite).map(\.module))
        let slots = ConcurrentSlots<Result<[ModuleResult], Error>>(count: pairs.count)
        BLASThreads.serial {
            DispatchQueue.concurrentPerform(iterations: pairs.count) { n in
                let (i, j) = pairs[n]
                slots.set(n, Result { try compareModule(a, i, b, j, timesteps: timesteps, flagged: flagged) })
            }
        }
        var all: [ModuleResult] = []
        for outcome in slots.values { all += try outcome!.get() }
        // The means are over finite modules; the others are reported by name.
        let results = all.filter(\.finite)
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
                              metadataDifferences: metadata,
                              nonFinite: flagged.union(all.filter { !$0.finite }.map(\.module)).sorted())
        return (all, summary)
    }

    static func compareModule(_ a: Adapter, _ i: Int, _ b: Adapter, _ j: Int, timesteps: [Double?], flagged: Set<String>) throws -> [ModuleResult] {
        let module = a.modules[i]
        let fa = try a.factors(i), fb = try b.factors(j)
        guard fa.inFeatures == fb.inFeatures, fa.outFeatures == fb.outFeatures else {
            throw AdapterError("\(module.name): shapes differ ([\(fa.outFeatures), \(fa.inFeatures)] vs [\(fb.outFeatures), \(fb.inFeatures)])")
        }
        var results: [ModuleResult] = []
        for t in timesteps {
            let (aa, bb, ab) = innerProducts(fa, keep: a.keptComponents(rank: fa.rank, at: t ?? 0),
                                             fb, keep: b.keptComponents(rank: fb.rank, at: t ?? 0))
            // max(0, NaN) is 0 in Swift: without this check NaN factors compared as equal.
            guard !flagged.contains(module.name), aa.isFinite, bb.isFinite, ab.isFinite else {
                results.append(ModuleResult(module: module.name, normA: aa.squareRoot(), normB: bb.squareRoot(), relativeDifference: .infinity,
                                            cosine: nil, parameters: fa.inFeatures * fa.outFeatures, timestep: t, finite: false))
                continue
            }
            let normA = max(0, aa).squareRoot(), normB = max(0, bb).squareRoot()
            let distance = max(0, aa + bb - 2 * ab).squareRoot()
            let scale = max(normA, normB)
            results.append(ModuleResult(module: module.name, normA: normA, normB: normB,
                                        relativeDifference: scale == 0 ? 0 : distance / scale,
                                        cosine: normA == 0 || normB == 0 ? nil : ab / (normA * normB),
                                        parameters: fa.inFeatures * fa.outFeatures, timestep: t, finite: true))
        }
        return results
    }

    /// (‖ΔA‖², ‖ΔB‖², ⟨ΔA, ΔB⟩) from the product forms ΔA = U1·D1, ΔB = U2·D2 (U [out, k], D [k, in]),
    /// using ⟨U1·D1, U2·D2⟩_F = Σ (U1ᵀU2) ⊙ (D1·D2ᵀ). One symmetric product per side — the Gram
    /// matrices of [U1 | U2] and [D1; D2], [k1 + k2]² each — yields all three, with two thirds of the
    /// flops of six separate GEMMs. The factors are written straight into the stacked buffers.
    static func innerProducts(_ a: Factors, keep keepA: Int, _ b: Factors, keep keepB: Int) -> (Double, Double, Double) {
        let out = a.outFeatures, width = a.inFeatures
        let k1 = Fold.components(a, keep: keepA), k2 = Fold.components(b, keep: keepB), m = k1 + k2
        guard m > 0 else { return (0, 0, 0) }
        let stackedU = UnsafeMutablePointer<Double>.allocate(capacity: out * m)       // [U1 | U2] [out, m]
        let stackedD = UnsafeMutablePointer<Double>.allocate(capacity: m * width)     // [D1; D2] [m, in]
        defer { stackedU.deallocate(); stackedD.deallocate() }
        Fold.write(a, keep: keepA, up: stackedU, upStride: m, down: stackedD)
        Fold.write(b, keep: keepB, up: stackedU + k1, upStride: m, down: stackedD + k1 * width)
        let gu = UnsafeMutablePointer<Double>.allocate(capacity: m * m), gd = UnsafeMutablePointer<Double>.allocate(capacity: m * m)
        defer { gu.deallocate(); gd.deallocate() }
        // Identical factors: ΔA = ΔB exactly, so the difference must come out exactly zero whatever the
        // rounding of the products; compute the first block alone and use it for all three.
        let identical = k1 == k2 && (0..<out).allSatisfy { o in memcmp(stackedU + o * m, stackedU + o * m + k1, k1 * 8) == 0 }
            && memcmp(stackedD, stackedD + k1 * width, k1 * width * 8) == 0
        let n = identical ? k1 : m
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(out), 1, stackedU, Int32(m), 0, gu, Int32(m))
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(width), 1, stackedD, Int32(width), 0, gd, Int32(m))
        // Σ over a block of the upper triangle; a diagonal block counts its off-diagonal cells twice.
        func blockSum(rows: Range<Int>, columns: Range<Int>) -> Double {
            var sum = 0.0
            for i in rows {
                for j in columns where j >= i {
                    let cell = gu[i * m + j] * gd[i * m + j]
                    sum += (j > i && columns.contains(i)) ? 2 * cell : cell
                }
            }
            return sum
        }
        let first = 0..<k1, second = k1..<m
        let aa = blockSum(rows: first, columns: first)
        if identical { return (aa, aa, aa) }
        return (aa, blockSum(rows: second, columns: second), blockSum(rows: first, columns: second))
    }
}
