import CBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The element types the kernels run on: Float for production, Double for
/// finite-difference gradient checks. Every requirement maps to the matching
/// libm / BLAS routine so that generic code specialised for Float is as fast
/// as hand-written Float code.
public protocol Scalar: BinaryFloatingPoint, SIMDScalar, Sendable {
    static func exp(_ x: Self) -> Self
    /// exp for hot loops: branch-free so loops over it vectorise (Float: a few ulp;
    /// Double: libm, exact, for gradient checks).
    static func fastExp(_ x: Self) -> Self
    /// erf for hot loops (Float: |error| ≤ 5e-7, the A&S 7.1.26 formula PyTorch's vectorised CPU erf also uses; Double: libm).
    static func fastErf(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func sin(_ x: Self) -> Self
    static func cos(_ x: Self) -> Self

    /// Row-major C = alpha · op(A) · op(B) + beta · C, op(A) [m, k], op(B) [k, n], C [m, n].
    /// `lda`, `ldb`, `ldc` are the row strides of the stored (untransposed) matrices.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
}

@inline(__always)
private func cblasTrans(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: Scalar {
    @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func fastExp(_ x: Float) -> Float { vectorExp(x) }
    @inline(__always) public static func fastErf(_ x: Float) -> Float { vectorErf(x) }
    @inline(__always) public static func erf(_ x: Float) -> Float { erff(x) }
    @inline(__always) public static func sin(_ x: Float) -> Float { sinf(x) }
    @inline(__always) public static func cos(_ x: Float) -> Float { cosf(x) }

    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 { scaleRows(c, m: m, n: n, ldc: ldc, beta: beta); return }
        cblas_sgemm(
            CblasRowMajor, cblasTrans(transA), cblasTrans(transB),
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
}

// File-scope wrappers: inside `extension Double` an unqualified `exp` would
// resolve to the protocol requirement itself.
@inline(__always) private func libm_exp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func libm_erf(_ x: Double) -> Double { erf(x) }
@inline(__always) private func libm_sin(_ x: Double) -> Double { sin(x) }
@inline(__always) private func libm_cos(_ x: Double) -> Double { cos(x) }

extension Double: Scalar {
    @inline(__always) public static func exp(_ x: Double) -> Double { libm_exp(x) }
    @inline(__always) public static func fastExp(_ x: Double) -> Double { libm_exp(x) }
    @inline(__always) public static func fastErf(_ x: Double) -> Double { libm_erf(x) }
    @inline(__always) public static func erf(_ x: Double) -> Double { libm_erf(x) }
    @inline(__always) public static func sin(_ x: Double) -> Double { libm_sin(x) }
    @inline(__always) public static func cos(_ x: Double) -> Double { libm_cos(x) }

    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 { scaleRows(c, m: m, n: n, ldc: ldc, beta: beta); return }
        cblas_dgemm(
            CblasRowMajor, cblasTrans(transA), cblasTrans(transB),
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
}

/// C = beta · C for an empty inner dimension (BLAS rejects a leading dimension of 0).
private func scaleRows<T: Scalar>(_ c: UnsafeMutablePointer<T>, m: Int, n: Int, ldc: Int, beta: T) {
    for i in 0..<m {
        for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
    }
}
