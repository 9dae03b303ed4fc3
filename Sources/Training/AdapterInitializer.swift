import CBLAS
import Engine
import Foundation

/// Initial factors of one adapted Linear W [out, in] (docs/method.md, "Initialisation").
///
/// Ortho: Q [R, in] with orthonormal rows and P [out, R] with orthonormal columns from QR factorisations of
/// Gaussian matrices, λ [R] from the singular values of an in × out N(0, 1/R²) matrix (the official
/// initialisation's distribution; its singular vectors are not paired with λ either), and frozen copies
/// Q0 = Q, P0 = P, λ0 = λ so the initial ΔW is zero at every t. The singular values come from the
/// eigenvalues of the smaller Gram matrix in Float64 (a GEMM and a symmetric eigensolver instead of an
/// SVD per module: SDXL has 560 of them).
/// Low-rank: down [R, in] ~ N(0, 1/R²) (the official `normal_(std=1/r)`), up [out, R] = 0.
enum AdapterInitializer {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func factors(
        inFeatures: Int, outFeatures: Int, rank: Int, method: TrainingMethod, spectrum: InitSpectrum, random: RandomStream
    ) throws -> AdapterFactors<Float> {
        let std = 1 / Double(rank)
        guard method.isOrtho else {
            let g = random.gaussians(rank * inFeatures)
            let down = Tensor<Float>(shape: [rank, inFeatures]) { Float(g[$0] * std) }
            return .lowRank(down: down, up: Tensor(zeros: [outFeatures, rank]), scale: 1)
        }
        guard rank <= min(inFeatures, outFeatures) else {
            throw Failure(description: "rank \(rank) exceeds the \(outFeatures)×\(inFeatures) layer's smaller side")
        }
        // One Gaussian draw, split into the three independent matrices.
        let g = random.gaussians(inFeatures * outFeatures + inFeatures * rank + outFeatures * rank)
        let lambda = try selectedSingularValues(
            Array(g[0..<(inFeatures * outFeatures)]).map { $0 * std }, rows: inFeatures, cols: outFeatures,
            rank: rank, spectrum: spectrum)
        let qColumns = try orthonormalColumns(Array(g[(inFeatures * outFeatures)..<(inFeatures * outFeatures + inFeatures * rank)]),
                                              rows: inFeatures, cols: rank)
        let pColumns = try orthonormalColumns(Array(g[(inFeatures * outFeatures + inFeatures * rank)...]), rows: outFeatures, cols: rank)
        // Q's rows are the columns of the [in, R] orthonormal matrix.
        let q = Tensor<Float>(shape: [rank, inFeatures]) { i in Float(qColumns[(i % inFeatures) * rank + i / inFeatures]) }
        let p = Tensor<Float>(shape: [outFeatures, rank]) { Float(pColumns[$0]) }
        let l = Tensor<Float>(shape: [rank]) { Float(lambda[$0]) }
        return .ortho(q: q, p: p, lambda: l, q0: q.clone(), p0: p.clone(), lambda0: l.clone())
    }

    /// The R singular values the spectrum selects, in descending order, of a row-major [rows, cols] matrix.
    static func selectedSingularValues(_ a: [Double], rows: Int, cols: Int, rank: Int, spectrum: InitSpectrum) throws -> [Double] {
        let n = min(rows, cols)
        // Gram matrix of the smaller side: G = AᵀA [cols, cols] or AAᵀ [rows, rows].
        var gram = [Double](repeating: 0, count: n * n)
        a.withUnsafeBufferPointer { ap in
            if cols <= rows {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(rows), 1, ap.baseAddress, Int32(cols), 0, &gram, Int32(n))
            } else {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(cols), 1, ap.baseAddress, Int32(cols), 0, &gram, Int32(n))
            }
        }
        var eigenvalues = [Double](repeating: 0, count: n)
        let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "U")), Int32(n), &gram, Int32(n), &eigenvalues)
        guard info == 0 else { throw Failure(description: "eigenvalue solver did not converge (LAPACK info \(info))") }
        let singular = eigenvalues.reversed().map { max($0, 0).squareRoot() }  // descending
        let start: Int
        switch spectrum {
        case .last: start = n - rank
        case .principal: start = 0
        case .middle: start = (n - rank + 1) / 2
        }
        return Array(singular[start..<(start + rank)])
    }

    /// An orthonormal basis of the column space of a row-major Gaussian [rows, cols] (rows ≥ cols), as
    /// the Q of its thin QR factorisation, row-major [rows, cols].
    static func orthonormalColumns(_ a: [Double], rows: Int, cols: Int) throws -> [Double] {
        var m = a
        var tau = [Double](repeating: 0, count: cols)
        var info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), &m, Int32(cols), &tau)
        if info == 0 { info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), Int32(cols), &m, Int32(cols), tau) }
        guard info == 0 else { throw Failure(description: "QR factorisation failed (LAPACK info \(info))") }
        return m
    }
}
