import Engine
import Testing
@testable import Training

/// The ortho initialisation's properties (docs/method.md, "Initialisation"): orthonormal Q rows and P
/// columns, λ the selected singular values of an N(0, 1/R²) matrix, frozen copies equal to the trainable
/// factors (ΔW = 0).
@Suite struct InitializerTests {
    static func orthonormalityError(_ a: Tensor<Float>, rowsAreVectors: Bool) -> Double {
        let (rows, cols) = (a.shape[0], a.shape[1])
        let n = rowsAreVectors ? rows : cols, len = rowsAreVectors ? cols : rows
        var worst = 0.0
        for i in 0..<n {
            for j in 0..<n {
                var dot = 0.0
                for k in 0..<len {
                    let x = rowsAreVectors ? a[i * cols + k] : a[k * cols + i]
                    let y = rowsAreVectors ? a[j * cols + k] : a[k * cols + j]
                    dot += Double(x) * Double(y)
                }
                worst = max(worst, abs(dot - (i == j ? 1 : 0)))
            }
        }
        return worst
    }

    @Test func orthoFactorsAreOrthonormalAndCancel() throws {
        let random = RandomStream(seed: 7, purpose: .initialization, step: 0)
        let f = try AdapterInitializer.factors(inFeatures: 96, outFeatures: 64, rank: 8, method: .tlora, spectrum: .last, random: random)
        guard case let .ortho(q, p, lambda, q0, p0, lambda0) = f else { Issue.record("not ortho"); return }
        #expect(q.shape == [8, 96] && p.shape == [64, 8] && lambda.shape == [8])
        let qErr = Self.orthonormalityError(q, rowsAreVectors: true), pErr = Self.orthonormalityError(p, rowsAreVectors: false)
        print("init: Q Qᵀ − I \(qErr), Pᵀ P − I \(pErr)")
        #expect(qErr < 1e-5 && pErr < 1e-5)
        #expect(q.array == q0.array && p.array == p0.array && lambda.array == lambda0.array)
        #expect(zip(lambda.array, lambda.array.dropFirst()).allSatisfy { $0 >= $1 }, "λ descending")
    }

    /// λ equals the singular values LAPACK's SVD gives for the same matrix (the Gram route loses nothing).
    @Test(arguments: InitSpectrum.allCases)
    func singularValuesMatchSVD(spectrum: InitSpectrum) throws {
        let (rows, cols, rank) = (48, 80, 6)
        let g = RandomStream(seed: 3, purpose: .initialization, step: 1).gaussians(rows * cols).map { $0 / Double(rank) }
        let selected = try AdapterInitializer.selectedSingularValues(g, rows: rows, cols: cols, rank: rank, spectrum: spectrum)
        let all = try referenceSingularValues(g, rows: rows, cols: cols)
        let start = spectrum == .last ? all.count - rank : spectrum == .principal ? 0 : (all.count - rank + 1) / 2
        let err = zip(selected, all[start..<(start + rank)]).map { abs($0 - $1) / all[0] }.max()!
        print("init \(spectrum): λ vs SVD \(err)")
        #expect(err < 1e-10)
    }

    @Test func vanillaStartsAtZeroDelta() throws {
        let f = try AdapterInitializer.factors(inFeatures: 32, outFeatures: 16, rank: 4, method: .lora, spectrum: .last,
                                               random: RandomStream(seed: 1, purpose: .initialization, step: 0))
        guard case let .lowRank(down, up, scale) = f else { Issue.record("not low-rank"); return }
        #expect(up.array.allSatisfy { $0 == 0 } && scale == 1)
        let std = (down.array.map { Double($0 * $0) }.reduce(0, +) / Double(down.count)).squareRoot()
        #expect(abs(std - 0.25) < 0.05, "down std \(std), want 1/R")
    }

    @Test func rankAboveLayerWidthIsAnError() {
        #expect(throws: AdapterInitializer.Failure.self) {
            try AdapterInitializer.factors(inFeatures: 8, outFeatures: 16, rank: 9, method: .tlora, spectrum: .last,
                                           random: RandomStream(seed: 1, purpose: .initialization, step: 0))
        }
    }
}
