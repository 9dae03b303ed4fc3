import CBLAS

/// All singular values (descending) of a row-major matrix by LAPACK's SVD, to check the Gram route against.
func referenceSingularValues(_ a: [Double], rows: Int, cols: Int) throws -> [Double] {
    let r = min(rows, cols)
    var m = a, s = [Double](repeating: 0, count: r)
    var u = [Double](repeating: 0, count: rows * r), vt = [Double](repeating: 0, count: r * cols)
    let info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(rows), Int32(cols), &m, Int32(cols), &s, &u, Int32(r), &vt, Int32(cols))
    precondition(info == 0, "dgesdd info \(info)")
    return s
}
