/// Byte-plane shuffle: for elements of `width` bytes, all first bytes come first, then all second bytes,
/// and so on. Bytes of equal significance (sign and exponent, high mantissa, low mantissa) end up
/// together, which zstd compresses far better than interleaved float data. `unshuffle` is its inverse.
///
/// Widths 2 and 4 (fp16/bf16, fp32) move eight elements per step in 64-bit registers where the compiler
/// does not vectorise the plain loop; the bytes are spread and gathered with shifts and masks, so each
/// step is a few loads and stores instead of one byte move per byte.
enum ByteShuffle {
    /// Writes the shuffled form of `source` into `destination` (same length, a multiple of `width`).
    static func shuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(source.count == destination.count && source.count % width == 0)
        let n = source.count / width
        guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        let blocks = width == 2 || width == 4 ? n / 8 : 0
        switch width {
        case 2:
            // Eight elements = two 8-byte loads; each plane gets one 8-byte store.
            for b in 0..<blocks {
                let v0 = UnsafeRawPointer(s + 16 * b).loadUnaligned(as: UInt64.self)
                let v1 = UnsafeRawPointer(s + 16 * b + 8).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(d + 8 * b).storeBytes(of: gather(v0) | gather(v1) << 32, as: UInt64.self)
                UnsafeMutableRawPointer(d + n + 8 * b).storeBytes(of: gather(v0 >> 8) | gather(v1 >> 8) << 32, as: UInt64.self)
            }
        case 4:
            // Eight elements = four 8-byte loads; first split each element into its two 16-bit halves,
            // then each half into its bytes.
            for b in 0..<blocks {
                let input = UnsafeRawPointer(s + 32 * b)
                let v0 = input.loadUnaligned(as: UInt64.self), v1 = input.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                let v2 = input.loadUnaligned(fromByteOffset: 16, as: UInt64.self), v3 = input.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
                // Low and high 16-bit halves of elements 0-3 and 4-7, as four 16-bit lanes each.
                let low0 = gather16(v0) | gather16(v1) << 32, high0 = gather16(v0 >> 16) | gather16(v1 >> 16) << 32
                let low1 = gather16(v2) | gather16(v3) << 32, high1 = gather16(v2 >> 16) | gather16(v3 >> 16) << 32
                UnsafeMutableRawPointer(d + 8 * b).storeBytes(of: gather(low0) | gather(low1) << 32, as: UInt64.self)
                UnsafeMutableRawPointer(d + n + 8 * b).storeBytes(of: gather(low0 >> 8) | gather(low1 >> 8) << 32, as: UInt64.self)
                UnsafeMutableRawPointer(d + 2 * n + 8 * b).storeBytes(of: gather(high0) | gather(high1) << 32, as: UInt64.self)
                UnsafeMutableRawPointer(d + 3 * n + 8 * b).storeBytes(of: gather(high0 >> 8) | gather(high1 >> 8) << 32, as: UInt64.self)
            }
        default:
            break
        }
        // The elements the blocks did not cover (all of them for other widths), one byte at a time.
        for plane in 0..<width {
            let out = d + plane * n
            for i in (8 * blocks)..<n { out[i] = s[i * width + plane] }
        }
    }

    /// Writes the original interleaved bytes of the shuffled `source` into `destination`.
    static func unshuffle(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, width: Int) {
        precondition(source.count == destination.count && source.count % width == 0)
        let n = source.count / width
        guard n > 0, let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        let blocks = width == 2 ? n / 8 : 0
        switch width {
        case 2:
            // Eight elements per step: one 8-byte load from each plane, two 8-byte stores.
            for b in 0..<blocks {
                let lo = UnsafeRawPointer(s + 8 * b).loadUnaligned(as: UInt64.self)
                let hi = UnsafeRawPointer(s + n + 8 * b).loadUnaligned(as: UInt64.self)
                UnsafeMutableRawPointer(d + 16 * b).storeBytes(of: interleave(lo, hi), as: UInt64.self)
                UnsafeMutableRawPointer(d + 16 * b + 8).storeBytes(of: interleave(lo >> 32, hi >> 32), as: UInt64.self)
            }
        case 4:
            // One element per step: the compiler vectorises this loop (it runs at memcpy speed).
            let p0 = s, p1 = s + n, p2 = s + 2 * n, p3 = s + 3 * n
            for i in 0..<n {
                let v = UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24
                UnsafeMutableRawPointer(d + 4 * i).storeBytes(of: v, as: UInt32.self)
            }
            return
        default:
            break
        }
        for plane in 0..<width {
            let inp = s + plane * n
            for i in (8 * blocks)..<n { d[i * width + plane] = inp[i] }
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

    /// The even bytes of `x` (bytes 0, 2, 4, 6) packed into the low four bytes; the inverse of spreading.
    @inline(__always)
    static func gather(_ x: UInt64) -> UInt64 {
        var x = x & 0x00FF_00FF_00FF_00FF
        x = (x | x >> 8) & 0x0000_FFFF_0000_FFFF
        x = (x | x >> 16) & 0x0000_0000_FFFF_FFFF
        return x
    }

    /// The even 16-bit lanes of `x` (lanes 0 and 2) packed into the low four bytes.
    @inline(__always)
    static func gather16(_ x: UInt64) -> UInt64 {
        let x = x & 0x0000_FFFF_0000_FFFF
        return (x | x >> 16) & 0x0000_0000_FFFF_FFFF
    }
}
