import CBLAS

/// SVD of a product A · B (A [m, k], B [k, n], k small) without forming the m × n matrix:
/// QR of A and of Bᵀ, then the SVD of the k × k core. Float64 throughout.
public struct LowRankSVD {
    /// Left singular vectors [m, k] (row-major), singular values (descending), right vectors Vᵀ [k, n].
    public let u: [Double]
    public let s: [Double]
    public let vt: [Double]
    public let m: Int
    public let n: Int

    public var rank: Int { s.count }

    public init(a: [Double], b: [Double], m: Int, k: Int, n: Int) throws {
        self.m = m
        self.n = n
        guard k > 0 else { u = []; s = []; vt = []; return }
        let (qa, ra) = try LowRankSVD.thinQR(a, rows: m, cols: k)            // A = Qa Ra
        let bt = LowRankSVD.transpose(b, rows: k, cols: n)
        let (qb, rb) = try LowRankSVD.thinQR(bt, rows: n, cols: k)           // Bᵀ = Qb Rb
        let p = min(m, k), q = min(n, k)
        // core = Ra [p, k] · Rbᵀ [k, q]
        var core = [Double](repeating: 0, count: p * q)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(p), Int32(q), Int32(k), 1, ra, Int32(k), rb, Int32(k), 0, &core, Int32(q))
        let (uc, sc, vtc) = try LowRankSVD.svd(core, rows: p, cols: q)
        let r = sc.count
        var u = [Double](repeating: 0, count: m * r)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(r), Int32(p), 1, qa, Int32(p), uc, Int32(r), 0, &u, Int32(r))
        var vt = [Double](repeating: 0, count: r * n)
        // Vᵀ = Vcᵀ · Qbᵀ
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r), Int32(n), Int32(q), 1, vtc, Int32(q), qb, Int32(q), 0, &vt, Int32(n))
        self.u = u
        self.s = sc
        self.vt = vt
    }

    /// Relative Frobenius error of keeping the first `keep` singular values.
    public func truncationError(keep: Int) -> Double {
        let total = s.reduce(0) { $0 + $1 * $1 }
        guard total > 0 else { return 0 }
        let dropped = s.dropFirst(keep).reduce(0) { $0 + $1 * $1 }
        return (dropped / total).squareRoot()
    }

    public var energy: Double { s.reduce(0) { $0 + $1 * $1 } }

    static func transpose(_ x: [Double], rows: Int, cols: Int) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = x[r * cols + c] } }
        return out
    }

    /// Thin QR of a row-major [rows, cols] matrix: Q [rows, p], R [p, cols], p = min(rows, cols).
    static func thinQR(_ x: [Double], rows: Int, cols: Int) throws -> ([Double], [Double]) {
        try requireFinite(x)
        var a = x
        let p = min(rows, cols)
        var tau = [Double](repeating: 0, count: p)
        var info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), &a, Int32(cols), &tau)
        guard info == 0 else { throw AdapterError("QR factorisation failed (LAPACK info \(info))") }
        var r = [Double](repeating: 0, count: p * cols)
        for i in 0..<p { for j in i..<cols { r[i * cols + j] = a[i * cols + j] } }
        // Q: the first p columns.
        var q = [Double](repeating: 0, count: rows * p)
        for i in 0..<rows { for j in 0..<p { q[i * p + j] = a[i * cols + j] } }
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, Int32(rows), Int32(p), Int32(p), &q, Int32(p), tau)
        guard info == 0 else { throw AdapterError("QR factorisation failed (LAPACK info \(info))") }
        return (q, r)
    }

    /// Thin SVD of a small row-major matrix.
    static func svd(_ x: [Double], rows: Int, cols: Int) throws -> ([Double], [Double], [Double]) {
        try requireFinite(x)
        var a = x
        let r = min(rows, cols)
        var s = [Double](repeating: 0, count: r)
        var u = [Double](repeating: 0, count: rows * r)
        var vt = [Double](repeating: 0, count: r * cols)
        let info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(rows), Int32(cols), &a, Int32(cols), &s, &u, Int32(r), &vt, Int32(cols))
        guard info == 0 else { throw AdapterError("SVD did not converge (LAPACK info \(info))") }
        return (u, s, vt)
    }
}

extension LowRankSVD {
    /// LAPACK answers NaN or infinity with a bare argument error (info −4); say what is wrong instead.
    static func requireFinite(_ x: [Double]) throws {
        guard x.allSatisfy(\.isFinite) else { throw AdapterError("the values hold NaN or infinity (or overflow), so no SVD exists") }
    }

    /// The SVD of a module's ΔW as it acts with `keep` components.
    public static func of(_ factors: Factors, keep: Int) throws -> LowRankSVD {
        let (up, down, k) = Fold.product(factors, keep: keep)
        return try LowRankSVD(a: up, b: down, m: factors.outFeatures, k: k, n: factors.inFeatures)
    }

    /// The SVD of all of a module's ΔW; a failure names the module and the file it came from.
    static func of(_ factors: Factors, module: String, from origin: String?) throws -> LowRankSVD {
        do { return try of(factors, keep: factors.rank) } catch {
            throw AdapterError("\(origin.map { "\($0): " } ?? "")module \(module): \(error)")
        }
    }
}
