/// How decoded samples are interleaved before they become RGB.
enum SampleLayout: Sendable {
    case gray, grayAlpha, rgb, rgba, cmyk

    var channels: Int {
        switch self {
        case .gray: 1
        case .grayAlpha: 2
        case .rgb: 3
        case .rgba, .cmyk: 4
        }
    }

    var hasAlpha: Bool { self == .grayAlpha || self == .rgba }
}

/// Sample layouts → 8-bit RGB with Pillow's integer arithmetic, so results equal Pillow's exactly.
enum PixelConversion {
    /// `samples` is [pixels, layout.channels]; the result is [pixels, 3].
    static func toRGB(_ samples: UnsafeBufferPointer<UInt8>, layout: SampleLayout) -> [UInt8] {
        let n = samples.count / layout.channels
        var out = [UInt8](repeating: 0, count: n * 3)
        out.withUnsafeMutableBufferPointer { rgb in
            for i in 0..<n {
                let s = i * layout.channels, o = i * 3
                switch layout {
                case .gray:
                    rgb[o] = samples[s]; rgb[o + 1] = samples[s]; rgb[o + 2] = samples[s]
                case .grayAlpha:
                    let v = onWhite(samples[s], alpha: samples[s + 1])
                    rgb[o] = v; rgb[o + 1] = v; rgb[o + 2] = v
                case .rgb:
                    rgb[o] = samples[s]; rgb[o + 1] = samples[s + 1]; rgb[o + 2] = samples[s + 2]
                case .rgba:
                    let a = samples[s + 3]
                    rgb[o] = onWhite(samples[s], alpha: a)
                    rgb[o + 1] = onWhite(samples[s + 1], alpha: a)
                    rgb[o + 2] = onWhite(samples[s + 2], alpha: a)
                case .cmyk:
                    let k = samples[s + 3]
                    rgb[o] = fromCMYK(samples[s], k); rgb[o + 1] = fromCMYK(samples[s + 1], k); rgb[o + 2] = fromCMYK(samples[s + 2], k)
                }
            }
        }
        return out
    }

    /// A sample over opaque white: round((c·a + 255·(255 − a)) / 255). Equal for all 65,536 (c, a) pairs
    /// to Pillow's `alpha_composite` on a white RGBA image (and to `paste` with the alpha as mask).
    @inline(__always)
    static func onWhite(_ c: UInt8, alpha a: UInt8) -> UInt8 {
        let x = Int(c) * Int(a) + 255 * (255 - Int(a))
        return UInt8((x + 127) / 255)
    }

    /// Pillow's naive CMYK → RGB: (255 − k) − c·(255 − k)/255 with its rounded divide-by-255.
    @inline(__always)
    static func fromCMYK(_ c: UInt8, _ k: UInt8) -> UInt8 {
        let nk = 255 - Int(k)
        let t = Int(c) * nk + 128
        return UInt8(clamping: nk - (((t >> 8) + t) >> 8))
    }
}
