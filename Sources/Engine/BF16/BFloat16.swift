/// bfloat16: the upper half of a Float32 (8 exponent bits, 7 mantissa bits), so the range is Float32's and
/// only precision is lost. Values are kept as raw UInt16 bit patterns; products consume them, Float32
/// accumulates (see docs/precision.md).
public enum BFloat16 {
    /// Round to nearest, ties to even, as PyTorch's `c10::BFloat16` and oneDNN's reorders do; NaN stays a
    /// (quiet) NaN instead of rounding into infinity.
    @inline(__always)
    public static func bits(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        let rounded = u &+ 0x7FFF &+ ((u >> 16) & 1)
        let isNaN = (u & 0x7FFF_FFFF) > 0x7F80_0000
        return UInt16(truncatingIfNeeded: isNaN ? (u >> 16) | 0x40 : rounded >> 16)
    }

    @inline(__always)
    public static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// The value `x` takes in bf16 (for tests and error bounds).
    public static func rounded(_ x: Float) -> Float { float(bits(x)) }

    /// dst[i] = bits(src[i]) for `count` contiguous elements, on all threads.
    static func convert(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<UInt16>, count: Int) {
        let profiled = ProfiledOperation("bf16 rounding")
        defer { profiled.end() }
        Parallel.forEach(count, grain: 1 << 16) { r in
            for i in r { dst[i] = bits(src[i]) }
        }
    }

    /// Runs `body` with `count` Float32 values rounded into a scratch bf16 buffer (activations a product consumes).
    static func withRounded<R>(_ src: UnsafePointer<Float>, count: Int, _ body: (UnsafeMutablePointer<UInt16>) -> R) -> R {
        Scratch.withBytes(2 * count) { raw in
            let b = raw.assumingMemoryBound(to: UInt16.self)
            convert(src, to: b, count: count)
            return body(b)
        }
    }

    /// Runs `body` with a tensor's values rounded to bf16 in scratch memory: one rounding serves every
    /// product that consumes the same activations (a Linear and the adapter hooked on it).
    public static func withRounded<R>(_ x: Tensor<Float>, _ body: (BF16Rounded) -> R) -> R {
        withRounded(x.data, count: x.count) { body(BF16Rounded(pointer: $0, shape: x.shape)) }
    }

    /// A Float32 matrix [rows, cols] (row stride `ld`) rounded into a bf16 buffer of row stride `dstLd`
    /// (default: contiguous rows).
    static func convert(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, to dst: UnsafeMutablePointer<UInt16>,
                        dstLd: Int? = nil) {
        let dstLd = dstLd ?? cols
        if ld == cols && dstLd == cols { return convert(src, to: dst, count: rows * cols) }
        Parallel.forEach(rows, grain: max(1, (1 << 16) / max(cols, 1))) { rs in
            for r in rs {
                let s = src + r * ld, d = dst + r * dstLd
                for c in 0..<cols { d[c] = bits(s[c]) }
            }
        }
    }
}

/// A tensor's values rounded to bf16, alive only inside `BFloat16.withRounded(_:_:)`.
public struct BF16Rounded {
    let pointer: UnsafeMutablePointer<UInt16>
    public let shape: [Int]
    var count: Int { shape.reduce(1, *) }
}
