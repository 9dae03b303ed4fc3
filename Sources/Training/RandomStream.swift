import Foundation

/// A counter-based random generator (Philox4x32-10): the numbers of (seed, stream, step) are a pure function
/// of those keys, so a resumed training run draws exactly what an uninterrupted one would have drawn.
public struct RandomStream: Sendable {
    /// What the numbers are for; each purpose has its own independent sequence.
    public enum Purpose: UInt32, Sendable {
        case timestep = 1, noise = 2, posterior = 3, initialization = 4
        case heldOutTimestep = 5, heldOutNoise = 6, heldOutPosterior = 7
    }

    let key: (UInt32, UInt32)
    let stream: UInt32
    let step: UInt32

    public init(seed: UInt64, purpose: Purpose, step: Int, substream: Int = 0) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        stream = purpose.rawValue &* 0x0100_0000 &+ UInt32(truncatingIfNeeded: substream)
        self.step = UInt32(truncatingIfNeeded: step)
    }

    /// Four 32-bit words of block `counter`.
    func block(_ counter: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = (UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), stream, step)
        var k = key
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c.0), p1 = UInt64(0xCD9E_8D57) &* UInt64(c.2)
            c = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
                 UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0))
            k = (k.0 &+ 0x9E37_79B9, k.1 &+ 0xBB67_AE85)
        }
        return c
    }

    /// A uniform integer in 0..<bound (bound ≪ 2⁶⁴, so the modulo bias is negligible).
    public func integer(below bound: Int) -> Int {
        let b = block(0)
        return Int((UInt64(b.0) | UInt64(b.1) << 32) % UInt64(bound))
    }

    /// `count` standard normal Float64 values (Box–Muller on 53-bit uniforms in (0, 1]).
    public func gaussians(_ count: Int) -> [Double] {
        var out = [Double](repeating: 0, count: count)
        var i = 0, counter: UInt64 = 0
        while i < count {
            let b = block(counter)
            counter += 1
            let u1 = (Double((UInt64(b.0) | UInt64(b.1) << 32) >> 11) + 1) * 0x1p-53
            let u2 = Double((UInt64(b.2) | UInt64(b.3) << 32) >> 11) * 0x1p-53
            let radius = (-2 * log(u1)).squareRoot(), angle = 2 * Double.pi * u2
            out[i] = radius * cos(angle)
            if i + 1 < count { out[i + 1] = radius * sin(angle) }
            i += 2
        }
        return out
    }
}
