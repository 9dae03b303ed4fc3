/// Conversions between stored floating-point dtypes and Float32.
public enum FloatConversion {
    /// Decodes `count` little-endian elements of `dtype` from `raw` (any alignment) into Float32.
    public static func toFloat32(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .f32:
                if count > 0 { UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(count * 4)])) }
            case .f16:
                for i in 0..<count {
                    out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
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
                for (i, v) in values.enumerated() { raw.storeBytes(of: Float16(v).bitPattern, toByteOffset: 2 * i, as: UInt16.self) }
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

    /// Float32 → bfloat16 with round-to-nearest-even, keeping NaN a NaN (as torch does).
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
