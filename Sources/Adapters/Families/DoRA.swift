import CBLAS
import SafeTensors
import SDXL

/// DoRA (docs/families.md, "DoRA"): W' = m / ‖W + s·BA‖ ⊙ (W + s·BA), the norm taken per output row
/// or per input channel. It needs the base weight W, so only checkpoint baking applies it.
public enum DoRA {
    /// The axis a magnitude vector of `shape` normalises. PEFT always stores one entry per output row
    /// ([out], or [1, out, 1, 1] for a convolution); LyCORIS stores [out, 1, …] (`wd_on_out`) or
    /// [1, in, …] — the same test ComfyUI makes: a first dimension equal to the output size is the output axis.
    static func axis(magnitudeShape shape: [Int], of info: ModuleInfo, format: AdapterFormat, path: String, module: String) throws -> DoRAAxis {
        let count = shape.reduce(1, *)
        let inputChannels = info.weightShape[1]
        if count == info.outFeatures, format == .peft || shape.first == info.outFeatures { return .output }
        if format != .peft, count == inputChannels, shape.count >= 2, shape[0] == 1, shape[1] == inputChannels { return .input }
        throw AdapterError("\(path): module \(module): magnitude vector of shape \(shape) fits neither the \(info.outFeatures) output rows nor the \(inputChannels) input channels of weight \(info.weightShape)")
    }

    /// The merged weight of `weight` ([out, in·kh·kw] row-major, the base as it stands) under module
    /// `factors`, in Float64: V = W + s·BA, then each row (or input channel's columns) of V times m / ‖·‖.
    /// A zero norm gives infinity or NaN, which the caller's non-finite policy refuses.
    public static func merged(_ weight: [Float], _ factors: DoRAFactors) -> [Double] {
        let f = factors.lowRank
        let (rows, cols) = (f.outFeatures, f.inFeatures)
        precondition(weight.count == rows * cols)
        var v = weight.map(Double.init)
        let (up, down, k) = Fold.product(.lowRank(f), keep: f.rank)
        if k > 0 {
            // Fold.product carries the scale s in `up`.
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(cols), Int32(k), 1, up, Int32(k), down, Int32(cols), 1, &v, Int32(cols))
        }
        switch factors.axis {
        case .output:
            for r in 0..<rows {
                var sum = 0.0
                for c in 0..<cols { sum += v[r * cols + c] * v[r * cols + c] }
                let scale = Double(factors.magnitude[r]) / sum.squareRoot()
                for c in 0..<cols { v[r * cols + c] *= scale }
            }
        case .input:
            // Input channel i owns columns i·area ..< (i+1)·area of every row.
            let area = factors.kernelArea
            for i in 0..<(cols / area) {
                var sum = 0.0
                for r in 0..<rows { for c in (i * area)..<((i + 1) * area) { sum += v[r * cols + c] * v[r * cols + c] } }
                let scale = Double(factors.magnitude[i]) / sum.squareRoot()
                for r in 0..<rows { for c in (i * area)..<((i + 1) * area) { v[r * cols + c] *= scale } }
            }
        }
        return v
    }
}

extension BaseWeights {
    /// The full SVD of ΔW = W' − W for `module` ([out, in·kh·kw]); a missing or misshapen base layer is
    /// an error naming the module.
    func differenceSVD(_ factors: DoRAFactors, module: ModuleInfo) throws -> LowRankSVD {
        let w = try weight(of: module, for: "a DoRA module")
        let merged = DoRA.merged(w, factors)
        return try Self.svd(ofDifference: zip(merged, w).map { $0 - Double($1) }, module: module)
    }

    /// The full SVD of a module's ΔW = W' − W ([out, in·kh·kw]) for the families whose change is not
    /// low-rank (DoRA, (IA)³); a non-finite difference is an error naming the module.
    static func svd(ofDifference delta: [Double], module: ModuleInfo) throws -> LowRankSVD {
        do {
            try LowRankSVD.requireFinite(delta)
            let (u, s, vt) = try LowRankSVD.svd(delta, rows: module.outFeatures, cols: module.inFeatures)
            return LowRankSVD(u: u, s: s, vt: vt, m: module.outFeatures, n: module.inFeatures)
        } catch {
            throw AdapterError("\(module.name): \(error)")
        }
    }
}
