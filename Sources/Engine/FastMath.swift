/// Branch-free Float exp and erf. libm calls stop LLVM from vectorising a
/// loop; these use only arithmetic, selects and integer bit operations that
/// have SSE2 forms, so loops over softmax / SiLU / GELU vectorise in a
/// generic (non -march) build.

/// exp(x) by Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-6
/// Taylor/minimax polynomial for e^r and 2^n assembled in the exponent bits.
/// Inputs are clamped to [−87.3, 88.3] (result ≈ 1.2e−38 below, finite above).
@inline(__always)
func vectorExp(_ x: Float) -> Float {
    let lo: Float = -87.3, hi: Float = 88.3
    let xc = x < lo ? lo : (x > hi ? hi : x)
    // Round x·log2(e) to an integer with the 1.5·2²³ trick: the sum's low
    // mantissa bits then hold n in two's complement.
    let magic: Float = 12_582_912
    let shifted = xc * 1.442_695_04 + magic
    let n = shifted - magic
    let r = (xc - n * 0.693_359_375) + n * 2.121_944_4e-4  // ln2 split in two parts
    var p: Float = 1.987_569_1e-4
    p = p * r + 1.398_199_9e-3
    p = p * r + 8.333_452e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_5e-1
    p = p * r + 5.000_000_1e-1
    p = p * r * r + r + 1
    let bits = (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23
    return p * Float(bitPattern: bits)
}

/// erf(x) by Abramowitz & Stegun 7.1.26: 1 − (a₁t + … + a₅t⁵)·e^(−x²),
/// t = 1/(1 + p|x|), |error| ≤ 1.5e−7 in exact arithmetic (≤ 5e−7 in Float);
/// the sign is restored by symmetry.
@inline(__always)
func vectorErf(_ x: Float) -> Float {
    let ax = x < 0 ? -x : x
    let t = 1 / (1 + 0.327_591_1 * ax)
    var poly: Float = 1.061_405_429
    poly = poly * t - 1.453_152_027
    poly = poly * t + 1.421_413_741
    poly = poly * t - 0.284_496_736
    poly = poly * t + 0.254_829_592
    let y = 1 - poly * t * vectorExp(-ax * ax)
    return x < 0 ? -y : y
}

// Reductions with eight independent lanes: a scalar loop carrying one
// accumulator is latency-bound and LLVM may not reorder floating-point sums.

@inline(__always)
func load8<T: Scalar>(_ p: UnsafeMutablePointer<T>) -> SIMD8<T> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self)
}

/// max of p[0..<n], n ≥ 1.
@inline(__always)
func maxOf<T: Scalar>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> T {
    var i = 0, m = p[0]
    if n >= 8 {
        var acc = load8(p)
        i = 8
        while i + 8 <= n { acc = pointwiseMax(acc, load8(p + i)); i += 8 }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, p[i]); i += 1 }
    return m
}

/// Σ p[0..<n].
@inline(__always)
func sumOf<T: Scalar>(_ p: UnsafeMutablePointer<T>, _ n: Int) -> T {
    var acc = SIMD8<T>(), i = 0
    while i + 8 <= n { acc += load8(p + i); i += 8 }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Σ a[i]·b[i] over 0..<n.
@inline(__always)
func dotOf<T: Scalar>(_ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ n: Int) -> T {
    var acc = SIMD8<T>(), i = 0
    while i + 8 <= n { acc += load8(a + i) * load8(b + i); i += 8 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}
