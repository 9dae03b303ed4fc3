import CBLAS

/// ΔW of a module, computed in one place for every command and model: bake, merge --into, the weights
/// sampling merges into the UNet and the text encoders, checks and tests. (The per-call hook of masked
/// modules never forms ΔW: Engine's `LowRankAdapter` multiplies by the factors.)
public enum Delta {
    /// ΔW [out, in] keeping the first `keep` components (the rank mask), accumulated in Float64.
    public static func compute(_ factors: Factors, keep: Int) -> [Float] {
        let (up, down, k) = Fold.product(factors, keep: keep)
        let (rows, cols) = (factors.outFeatures, factors.inFeatures)
        guard k > 0 else { return [Float](repeating: 0, count: rows * cols) }
        var c = [Double](repeating: 0, count: rows * cols)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(cols), Int32(k), 1, up, Int32(k), down, Int32(cols), 0, &c, Int32(cols))
        return c.map(Float.init)
    }
}
