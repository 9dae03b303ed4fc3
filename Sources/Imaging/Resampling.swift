#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resampling kernels of Pillow's `Image.resize` (support in source pixels at scale 1).
public enum ResampleFilter: Sendable {
    /// Pillow's `Image.BILINEAR` (triangle, support 1).
    case bilinear
    /// Pillow's `Image.BICUBIC` (Keys cubic with a = −0.5, support 2).
    case bicubic
    /// Pillow's `Image.LANCZOS` (sinc windowed by sinc, support 3).
    case lanczos

    var support: Double {
        switch self {
        case .bilinear: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .bilinear:
            let a = abs(x)
            return a < 1 ? 1 - a : 0
        case .bicubic:
            let a = abs(x), k = -0.5
            if a < 1 { return ((k + 2) * a - (k + 3)) * a * a + 1 }
            if a < 2 { return (((a - 5) * a + 8) * a - 4) * k }
            return 0
        case .lanczos:
            return (-3 <= x && x < 3) ? Self.sinc(x) * Self.sinc(x / 3) : 0
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

extension RGBImage {
    /// A square `side` × `side` resample; see `resized(width:height:filter:)`.
    public func resized(to side: Int, filter: ResampleFilter = .lanczos) -> RGBImage {
        resized(width: side, height: side, filter: filter)
    }

    /// The image resampled to `width` × `height` as Pillow 13's `Image.resize((width, height), filter)` on an
    /// RGB image: separable passes through an 8-bit intermediate; when shrinking, the kernel is widened by
    /// the scale factor (antialiasing); weights are normalised per output pixel and applied in 22-bit fixed
    /// point with rounding and clamping to 0...255, as Pillow does for 8-bit images. Upscaling uses the
    /// kernel at its own width. Sides must be positive.
    ///
    /// Pass order matters for the rounding of the intermediate, so it follows Pillow 13: vertical first when
    /// the height shrinks by more than twice as many pixels as the width does, else horizontal first
    /// (older Pillow always went horizontal first; the two agree whenever one side is unchanged or the
    /// resize is a square to a square).
    public func resized(width outW: Int, height outH: Int, filter: ResampleFilter = .lanczos) -> RGBImage {
        precondition(outW > 0 && outH > 0, "resize to \(outW)x\(outH): sides must be positive")
        let verticalFirst = outH < height && height - outH > 2 * (width - outW)
        var image = self
        if verticalFirst {
            image = image.resampledColumns(to: outH, filter: filter)
            if outW != width { image = image.resampledRows(to: outW, filter: filter) }
        } else {
            if outW != width { image = image.resampledRows(to: outW, filter: filter) }
            if outH != height { image = image.resampledColumns(to: outH, filter: filter) }
        }
        return image
    }

    /// Horizontal pass: [height, width, 3] → [height, outW, 3].
    private func resampledRows(to outW: Int, filter: ResampleFilter) -> RGBImage {
        let weights = FixedPointWeights(inSize: width, outSize: outW, filter: filter)
        var out = [UInt8](repeating: 0, count: outW * height * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = y * width * 3
                    for x in 0..<outW {
                        let first = weights.first[x], k = x * weights.taps
                        var r = FixedPointWeights.half, g = FixedPointWeights.half, b = FixedPointWeights.half
                        for t in 0..<weights.count[x] {
                            let w = weights.values[k + t], s = row + (first + t) * 3
                            r += Int32(src[s]) &* w
                            g += Int32(src[s + 1]) &* w
                            b += Int32(src[s + 2]) &* w
                        }
                        let d = (y * outW + x) * 3
                        dst[d] = FixedPointWeights.clip8(r)
                        dst[d + 1] = FixedPointWeights.clip8(g)
                        dst[d + 2] = FixedPointWeights.clip8(b)
                    }
                }
            }
        }
        return RGBImage(checkedWidth: outW, height: height, pixels: out)
    }

    /// Vertical pass: [height, width, 3] → [outH, width, 3].
    private func resampledColumns(to outH: Int, filter: ResampleFilter) -> RGBImage {
        let weights = FixedPointWeights(inSize: height, outSize: outH, filter: filter)
        let stride = width * 3
        var out = [UInt8](repeating: 0, count: width * outH * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<outH {
                    let first = weights.first[y], k = y * weights.taps, n = weights.count[y]
                    for i in 0..<stride {
                        var acc = FixedPointWeights.half
                        for t in 0..<n {
                            acc += Int32(src[(first + t) * stride + i]) &* weights.values[k + t]
                        }
                        dst[y * stride + i] = FixedPointWeights.clip8(acc)
                    }
                }
            }
        }
        return RGBImage(checkedWidth: width, height: outH, pixels: out)
    }
}

/// Per output pixel: the first source pixel, how many follow, and their weights in fixed point.
/// Mirrors Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` (Resample.c).
struct FixedPointWeights {
    /// 32 − 8 − 2 bits: 8 for the sample, 2 of headroom for negative lobes and rounding.
    static let precisionBits: Int32 = 22
    static let half: Int32 = 1 << (precisionBits - 1)

    let taps: Int          // stride of `values` per output pixel
    var first: [Int]       // [outSize]
    var count: [Int]       // [outSize]
    var values: [Int32]    // [outSize, taps]

    init(inSize: Int, outSize: Int, filter: ResampleFilter) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        taps = Int(ceil(support)) * 2 + 1
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        values = [Int32](repeating: 0, count: outSize * taps)
        var w = [Double](repeating: 0, count: taps)
        let inverseScale = 1.0 / filterScale  // multiplied, not divided, for Pillow's exact weights
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            // Pillow rounds by truncating (value + 0.5) toward zero.
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            let n = hi - lo
            var total = 0.0
            for t in 0..<n {
                w[t] = filter.weight((Double(t + lo) - center + 0.5) * inverseScale)
                total += w[t]
            }
            for t in 0..<n {
                let normalised = total != 0 ? w[t] / total : w[t]
                let scaled = normalised * Double(1 << Self.precisionBits)
                values[xx * taps + t] = Int32(normalised < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
            first[xx] = lo
            count[xx] = n
        }
    }

    @inline(__always)
    static func clip8(_ acc: Int32) -> UInt8 {
        UInt8(clamping: acc >> precisionBits)
    }
}
