import Foundation

/// The normal draws of PyTorch's CPU generator, so `--seed S` gives the initial noise of
/// `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(S))` (what diffusers' pipelines
/// draw for a CPU generator).
///
/// torch seeds a 32-bit Mersenne Twister (MT19937) with the low 32 bits of the seed. A Float32 tensor of
/// at least 16 contiguous elements is filled with uniforms u = (32-bit draw & 0xFFFFFF) · 2⁻²⁴, then
/// turned into normals 16 at a time by Box–Muller: for j < 8, with u1 = 1 − x[j], u2 = x[j + 8],
/// r = sqrt(−2 ln u1), θ = 2π u2: x[j] = r cos θ, x[j + 8] = r sin θ. When the count is not a multiple of
/// 16, the last 16 elements are drawn again (16 fresh uniforms) and transformed the same way. torch's
/// vectorised log/sin/cos may differ from these in the last bit or two of Float32.
public struct TorchRandom {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    /// The next 32-bit output of MT19937.
    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        index = 0
    }

    /// A Float32 uniform in [0, 1) with 24 random bits, as torch's `uniform_real_distribution<float>`.
    mutating func uniform() -> Float { Float(next() & 0xFF_FFFF) * 0x1p-24 }

    /// `count` standard normal Float32 values as `torch.randn` fills a contiguous tensor (count ≥ 16).
    public mutating func normals(count: Int) throws -> [Float] {
        guard count >= 16 else {
            throw SamplingError.badInput("torch-compatible noise needs at least 16 values (got \(count))")
        }
        var x = (0..<count).map { _ in uniform() }
        x.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i + 16 <= count {
                Self.boxMuller16(p.baseAddress! + i)
                i += 16
            }
        }
        if count % 16 != 0 {
            for j in (count - 16)..<count { x[j] = uniform() }
            x.withUnsafeMutableBufferPointer { Self.boxMuller16($0.baseAddress! + count - 16) }
        }
        return x
    }

    /// x[0..<16] (uniforms) → normals in place.
    static func boxMuller16(_ x: UnsafeMutablePointer<Float>) {
        for j in 0..<8 {
            let u1 = 1 - x[j], u2 = x[j + 8]
            let radius = (-2 * Foundation.log(u1)).squareRoot()
            let theta = Float(2 * Double.pi * Double(u2))
            x[j] = radius * Foundation.cos(theta)
            x[j + 8] = radius * Foundation.sin(theta)
        }
    }
}
