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

    /// Interleaves the four low bytes of `a` with those of `b`: a0 b0 a1 b1 a2 b2 a3 b3 (little-endian).
    @inline(__always)
    static func interleave(_ a: UInt64, _ b: UInt64) -> UInt64 {
        func spread(_ x: UInt64) -> UInt64 {
            var x = x & 0xFFFF_FFFF
            x = (x | x << 16) & 0x0000_FFFF_0000_FFFF
            x = (x | x << 8) & 0x00FF_00FF_00FF_00FF
            return x
        }
        return spread(a) | spread(b) << 8
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
            // Eight elements per step: one 8-byte load from each plane, two 8-byte stores.
            let blocks = n / 8
            for b in 0..<blocks {
                let lo = UnsafeRawPointer(s + 8 * b).loadUnaligned(as: UInt64.self)
                let hi = UnsafeRawPointer(s + n + 8 * b).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(d + 16 * b).storeBytes(of: ByteShuffle.interleave(lo & 0xFFFF_FFFF, hi & 0xFFFF_FFFF), as: UInt64.self)
                UnsafeMutableRawPointer(d + 16 * b + 8).storeBytes(of: ByteShuffle.interleave(lo >> 32, hi >> 32), as: UInt64.self)
            }
            for i in (8 * blocks)..<n { d[2 * i] = s[i]; d[2 * i + 1] = s[n + i] }
        case 4:
            let p0 = s, p1 = s + n, p2 = s + 2 * n, p3 = s + 3 * n
            for i in 0..<n {
                let v = UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24
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
