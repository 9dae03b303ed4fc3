/// Conversions between stored floating-point dtypes and Float32.
public enum FloatConversion {
    /// Decodes `count` little-endian elements of `dtype` from `raw` (any alignment) into Float32.
    public static func toFloat32(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .f32:
                if count > 0 { UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * 4)])) }
            case .f16:
                if let start = raw.baseAddress, Int(bitPattern: start) % 2 == 0 {
                    let halves = start.assumingMemoryBound(to: UInt16.self)
                    for i in 0..<count { out[i] = halfToFloat(halves[i]) }
                } else {
                    for i in 0..<count { out[i] = halfToFloat(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
                }
            case .bf16:
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                }
            case .f64:
                for i in 0..<count {
                    out[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
                }
            default:
                preconditionFailure("toFloat32 called with non-float dtype \(dtype)")
            }
            initialized = count
        }
    }

    /// Encodes Float32 values as `dtype` bytes (round to nearest even for F16 and BF16).
    public static func fromFloat32(_ values: UnsafeBufferPointer<Float>, dtype: DType) -> [UInt8] {
        let size = dtype.bitSize / 8
        return [UInt8](unsafeUninitializedCapacity: values.count * size) { out, initialized in
            let raw = UnsafeMutableRawBufferPointer(out)
            switch dtype {
            case .f32:
                if !values.isEmpty { raw.copyMemory(from: UnsafeRawBufferPointer(values)) }
            case .f16:
                for (i, v) in values.enumerated() { raw.storeBytes(of: halfBits(v), toByteOffset: 2 * i, as: UInt16.self) }
            case .bf16:
                for (i, v) in values.enumerated() { raw.storeBytes(of: bfloat16Bits(v), toByteOffset: 2 * i, as: UInt16.self) }
            case .f64:
                for (i, v) in values.enumerated() { raw.storeBytes(of: Double(v), toByteOffset: 8 * i, as: Double.self) }
            default:
                preconditionFailure("fromFloat32 called with non-float dtype \(dtype)")
            }
            initialized = values.count * size
        }
    }

    public static func fromFloat32(_ values: [Float], dtype: DType) -> [UInt8] {
        values.withUnsafeBufferPointer { fromFloat32($0, dtype: dtype) }
    }

    /// Every half-precision value as Float32. Built generically (no F16C), Swift converts Float16 in
    /// software, which made fp16 files several times slower to read than to copy; a 256 KB table is not.
    /// IEEE half → Float32, exactly, by arithmetic a loop can vectorise (a table lookup cannot): the
    /// half's exponent and mantissa, shifted into a float's, read 2¹¹² times too small — for subnormal
    /// halves too — so one multiplication by 2¹¹² rescales; all-ones exponents (±inf, NaN) are set apart.
    @inline(__always)
    static func halfToFloat(_ half: UInt16) -> Float {
        let bits = UInt32(half)
        let magnitude = (bits & 0x7FFF) << 13, sign = (bits & 0x8000) << 16
        let finite = Float(bitPattern: magnitude) * 0x1p112
        let special = Float(bitPattern: magnitude | 0x7F80_0000)
        return Float(bitPattern: (magnitude >= 0x0F80_0000 ? special : finite).bitPattern | sign)
    }

    /// Float32 → IEEE half with round-to-nearest-even (overflow to ±inf, NaN kept), by bit manipulation.
    @inline(__always)
    public static func halfBits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude >= 0x7F80_0000 { return sign | (magnitude > 0x7F80_0000 ? 0x7E00 : 0x7C00) }
        if magnitude >= 0x477F_F000 { return sign | 0x7C00 }  // rounds to infinity (≥ 65520)
        if magnitude < 0x3880_0000 {
            // Below the smallest normal half: adding 0.5 puts the result's last mantissa bit at 2⁻²⁴, the
            // half subnormal unit, and the FPU rounds to nearest even.
            let shifted = Float(bitPattern: magnitude) + 0.5
            return sign | UInt16(truncatingIfNeeded: shifted.bitPattern &- 0x3F00_0000)
        }
        let odd = (magnitude >> 13) & 1
        // Rebias the exponent (127 → 15) and round the mantissa from 23 to 10 bits.
        return sign | UInt16(truncatingIfNeeded: (magnitude &+ 0xC800_0FFF &+ odd) >> 13)
    }

    /// Float32 → bfloat16 with round-to-nearest-even, keeping NaN a NaN (as torch does).
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
