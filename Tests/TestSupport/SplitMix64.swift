import Foundation

/// SplitMix64: a tiny deterministic generator, so a test's pseudo-random inputs (and its failures) reproduce.
public struct SplitMix64 {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SplitMix64 {
    /// Roughly normal floats (Box–Muller) with standard deviation `scale`.
    public mutating func normal(count: Int, scale: Float = 0.02) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(count)
        while out.count < count {
            let r = (-2 * log(positiveUnit())).squareRoot(), t = 2 * Float.pi * positiveUnit()
            out.append(r * cos(t) * scale)
            if out.count < count { out.append(r * sin(t) * scale) }
        }
        return out
    }

    /// Uniform in (0, 1], so its logarithm is finite.
    private mutating func positiveUnit() -> Float { Float(next() >> 40) / Float(1 << 24) + 1e-7 }

    public mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}
