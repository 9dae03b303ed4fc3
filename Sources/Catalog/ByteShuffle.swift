/// Byte-plane shuffle: for elements of `width` bytes, all first bytes come first, then all second bytes,
/// and so on. Bytes of equal significance (sign and exponent, high mantissa, low mantissa) end up
/// together, which zstd compresses far better than interleaved float data. `unshuffle` is its inverse.
enum ByteShuffle {
    /// Writes the shuffled form of `source` into `destination` (same length, a multiple of `width`).
    static func shuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(source.count == destination.count && source.count % width == 0)
        let n = source.count / width
        guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        switch width {
        case 2:
            for i in 0..<n { d[i] = s[2 * i]; d[n + i] = s[2 * i + 1] }
        case 4:
            for i in 0..<n {
                let v = UnsafeRawPointer(s + 4 * i).loadUnaligned(as: UInt32.self)
                d[i] = UInt8(truncatingIfNeeded: v)
                d[n + i] = UInt8(truncatingIfNeeded: v >> 8)
                d[2 * n + i] = UInt8(truncatingIfNeeded: v >> 16)
                d[3 * n + i] = UInt8(truncatingIfNeeded: v >> 24)
            }
        default:
            for plane in 0..<width {
                let out = d + plane * n
                for i in 0..<n { out[i] = s[i * width + plane] }
            }
        }
    }

    /// Writes the original interleaved bytes of the shuffled `source` into `destination`.
    static func unshuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(source.count == destination.count && source.count % width == 0)
        let n = source.count / width
        guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        switch width {
        case 2:
            for i in 0..<n { d[2 * i] = s[i]; d[2 * i + 1] = s[n + i] }
        case 4:
            for i in 0..<n {
                let v = UInt32(s[i]) | UInt32(s[n + i]) << 8 | UInt32(s[2 * n + i]) << 16 | UInt32(s[3 * n + i]) << 24
                UnsafeMutableRawPointer(d + 4 * i).storeBytes(of: v, as: UInt32.self)
            }
        default:
            for plane in 0..<width {
                let inp = s + plane * n
                for i in 0..<n { d[i * width + plane] = inp[i] }
            }
        }
    }
}
