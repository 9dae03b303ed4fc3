/// 2-D convolution, NCHW, square kernel k (odd: 1 or 3 in SDXL), stride s, zero padding p
/// before (top, left) and q after (bottom, right); q = p unless `trailingPadding` says otherwise
/// (the VAE's downsampler pads (0, 1, 0, 1), without a padded copy of its input).
///
/// Shapes: x [B, Cin, H, W], weight [Cout, Cin, k, k], bias [Cout],
/// y [B, Cout, Ho, Wo] with Ho = (H + p + q − k) / s + 1 (likewise Wo).
/// Forward: per image, y = weight [Cout, Cin·k·k] · col [Cin·k·k, Ho·Wo] + bias,
/// where col is the im2col unfolding; 1×1 stride-1 convolutions skip im2col.
/// The unfolding is done in blocks of output pixels so its buffer stays small
/// (a 640-channel 3×3 layer at 128×128 would otherwise need 377 MB).
/// Backward (accumulating): dx += col2im(weightᵀ · dy), dWeight += dy · colᵀ,
/// dBias += Σ dy over batch and pixels. `nil` gradients are skipped.
public enum Conv2d {
    /// Elements of the im2col block buffer (default 16 MB in Float): trades
    /// memory for GEMM width. Set once at start-up (tests shrink it to exercise blocking).
    nonisolated(unsafe) public static var blockBudget = 4 << 20

    public static func outputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(
        x: Tensor<T>, weight: Tensor<T>, bias: Tensor<T>?,
        stride: Int = 1, padding: Int, trailingPadding: Int? = nil, y: Tensor<T>
    ) {
        let g = Geometry(x: x, weight: weight, stride: stride, padding: padding, trailingPadding: trailingPadding)
        expectShape(y, [g.batch, g.cout, g.ho, g.wo], "Conv2d y")
        let profiled = ProfiledOperation(g.isPointwise ? "conv2d.forward 1×1" : "conv2d.forward k×k (im2col)",
                                         flops: 2 * g.batch * g.cout * g.kdim * g.ho * g.wo)
        defer { profiled.end() }
        if let bias { expectShape(bias, [g.cout], "Conv2d bias") }
        let npix = g.ho * g.wo
        for b in 0..<g.batch {
            let yb = y.data + b * g.cout * npix
            if let bias {
                let bp = bias.data
                Parallel.forEach(g.cout, grain: max(1, 16384 / npix)) { cs in
                    for c in cs { (yb + c * npix).update(repeating: bp[c], count: npix) }
                }
            }
            let beta: T = bias == nil ? 0 : 1
            let xb = x.data + b * g.cin * g.h * g.w
            if g.isPointwise {
                T.gemm(
                    transA: false, transB: false, m: g.cout, n: npix, k: g.cin,
                    alpha: 1, a: weight.data, lda: g.cin, b: xb, ldb: npix,
                    beta: beta, c: yb, ldc: npix)
                continue
            }
            let block = g.blockPixels
            Scratch.with(g.kdim * block, of: T.self) { col in
                var p0 = 0
                while p0 < npix {
                    let np = min(block, npix - p0)
                    g.im2col(xb, pixels: p0..<(p0 + np), into: col)
                    T.gemm(
                        transA: false, transB: false, m: g.cout, n: np, k: g.kdim,
                        alpha: 1, a: weight.data, lda: g.kdim, b: col, ldb: np,
                        beta: beta, c: yb + p0, ldc: npix)
                    p0 += np
                }
            }
        }
    }

    /// Allocating convenience: returns y [B, Cout, Ho, Wo].
    public static func forward<T: Scalar>(
        x: Tensor<T>, weight: Tensor<T>, bias: Tensor<T>?, stride: Int = 1, padding: Int, trailingPadding: Int? = nil
    ) -> Tensor<T> {
        let g = Geometry(x: x, weight: weight, stride: stride, padding: padding, trailingPadding: trailingPadding)
        let y = Tensor<T>(zeros: [g.batch, g.cout, g.ho, g.wo])
        forward(x: x, weight: weight, bias: bias, stride: stride, padding: padding, trailingPadding: trailingPadding, y: y)
        return y
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(
        dy: Tensor<T>, x: Tensor<T>, weight: Tensor<T>, stride: Int = 1, padding: Int, trailingPadding: Int? = nil,
        dx: Tensor<T>?, dWeight: Tensor<T>?, dBias: Tensor<T>?
    ) {
        let g = Geometry(x: x, weight: weight, stride: stride, padding: padding, trailingPadding: trailingPadding)
        expectShape(dy, [g.batch, g.cout, g.ho, g.wo], "Conv2d dy")
        if let dx { expectShape(dx, x.shape, "Conv2d dx") }
        if let dWeight { expectShape(dWeight, weight.shape, "Conv2d dWeight") }
        let profiled = ProfiledOperation(g.isPointwise ? "conv2d.backward 1×1" : "conv2d.backward k×k (im2col)",
                                         flops: 2 * g.batch * g.cout * g.kdim * g.ho * g.wo * ((dx == nil ? 0 : 1) + (dWeight == nil ? 0 : 1)))
        defer { profiled.end() }
        let npix = g.ho * g.wo
        let inPix = g.h * g.w
        let block = g.isPointwise ? npix : g.blockPixels
        Scratch.with(g.isPointwise ? 0 : g.kdim * block, of: T.self) { col in
            for b in 0..<g.batch {
                let dyb = dy.data + b * g.cout * npix
                let xb = x.data + b * g.cin * inPix
                if let dBias {
                    expectShape(dBias, [g.cout], "Conv2d dBias")
                    let db = dBias.data
                    Parallel.forEach(g.cout, grain: 16) { cs in
                        for c in cs {
                            var s: T = 0
                            let row = dyb + c * npix
                            for i in 0..<npix { s += row[i] }
                            db[c] += s
                        }
                    }
                }
                if g.isPointwise {
                    if let dWeight {
                        T.gemm(
                            transA: false, transB: true, m: g.cout, n: g.cin, k: npix,
                            alpha: 1, a: dyb, lda: npix, b: xb, ldb: inPix,
                            beta: 1, c: dWeight.data, ldc: g.cin)
                    }
                    if let dx {
                        T.gemm(
                            transA: true, transB: false, m: g.cin, n: npix, k: g.cout,
                            alpha: 1, a: weight.data, lda: g.cin, b: dyb, ldb: npix,
                            beta: 1, c: dx.data + b * g.cin * inPix, ldc: inPix)
                    }
                    continue
                }
                var p0 = 0
                while p0 < npix {
                    let np = min(block, npix - p0)
                    if let dWeight {
                        g.im2col(xb, pixels: p0..<(p0 + np), into: col)
                        T.gemm(
                            transA: false, transB: true, m: g.cout, n: g.kdim, k: np,
                            alpha: 1, a: dyb + p0, lda: npix, b: col, ldb: np,
                            beta: 1, c: dWeight.data, ldc: g.kdim)
                    }
                    if let dx {
                        T.gemm(
                            transA: true, transB: false, m: g.kdim, n: np, k: g.cout,
                            alpha: 1, a: weight.data, lda: g.kdim, b: dyb + p0, ldb: npix,
                            beta: 0, c: col, ldc: np)
                        g.col2im(col, pixels: p0..<(p0 + np), into: dx.data + b * g.cin * inPix)
                    }
                    p0 += np
                }
            }
        }
    }
}

/// Sizes of one convolution and its im2col / col2im index maps.
struct Geometry {
    let batch, cin, h, w, cout, k, stride, pad, ho, wo: Int
    var kdim: Int { cin * k * k }
    var isPointwise: Bool { k == 1 && stride == 1 && pad == 0 && ho == h && wo == w }
    var blockPixels: Int { max(1, min(ho * wo, Conv2d.blockBudget / kdim)) }

    /// `pad` shifts the window (top, left); the trailing padding only adds output rows and columns,
    /// whose out-of-range taps im2col already reads as zeros.
    init<T>(x: Tensor<T>, weight: Tensor<T>, stride: Int, padding: Int, trailingPadding: Int? = nil) {
        precondition(x.rank == 4 && weight.rank == 4, "Conv2d wants x [B,C,H,W], weight [O,C,k,k]")
        precondition(weight.shape[1] == x.shape[1], "Conv2d: x \(x.shape) vs weight \(weight.shape)")
        precondition(weight.shape[2] == weight.shape[3], "Conv2d: square kernels only")
        let trailing = trailingPadding ?? padding
        precondition(stride >= 1 && padding >= 0 && trailing >= 0, "Conv2d: stride \(stride), padding \(padding), \(trailing)")
        batch = x.shape[0]; cin = x.shape[1]; h = x.shape[2]; w = x.shape[3]
        cout = weight.shape[0]; k = weight.shape[2]
        self.stride = stride; pad = padding
        ho = (h + padding + trailing - k) / stride + 1
        wo = (w + padding + trailing - k) / stride + 1
        precondition(ho > 0 && wo > 0, "Conv2d: empty output for input \(x.shape)")
    }

    /// Output columns ox whose input column ox·s − pad + kx lies inside [0, w).
    @inline(__always)
    func validColumns(_ kx: Int, _ ox0: Int, _ ox1: Int) -> Range<Int> {
        // ox ≥ ceil((pad − kx) / s) and ox ≤ floor((w − 1 + pad − kx) / s)
        let lo = pad - kx <= 0 ? 0 : (pad - kx + stride - 1) / stride
        let top = w - 1 + pad - kx
        let hi = top < 0 ? 0 : top / stride + 1
        let a = max(ox0, lo), b = min(ox1, hi)
        return a < b ? a..<b : ox0..<ox0
    }

    /// col[r, p − p0] = x[ci, oy·s − pad + ky, ox·s − pad + kx] (0 outside),
    /// r = (ci·k + ky)·k + kx, for output pixels p = oy·wo + ox in `pixels`.
    func im2col<T: Scalar>(_ x: UnsafeMutablePointer<T>, pixels: Range<Int>, into col: UnsafeMutablePointer<T>) {
        let np = pixels.count
        Parallel.forEach(kdim, grain: 8) { rows in
            for r in rows {
                let ci = r / (k * k), ky = (r / k) % k, kx = r % k
                let src = x + ci * h * w
                let dst = col + r * np
                var p = pixels.lowerBound
                while p < pixels.upperBound {
                    let oy = p / wo, ox0 = p % wo
                    let ox1 = min(wo, ox0 + (pixels.upperBound - p))
                    let out = dst + (p - pixels.lowerBound) - ox0  // indexed by ox
                    let iy = oy * stride - pad + ky
                    if iy < 0 || iy >= h {
                        (out + ox0).update(repeating: 0, count: ox1 - ox0)
                    } else {
                        let v = validColumns(kx, ox0, ox1)
                        for ox in ox0..<v.lowerBound { out[ox] = 0 }
                        let row = src + iy * w - pad + kx
                        if stride == 1 {
                            if !v.isEmpty { (out + v.lowerBound).update(from: row + v.lowerBound, count: v.count) }
                        } else {
                            for ox in v { out[ox] = row[ox * stride] }
                        }
                        for ox in max(v.upperBound, ox0)..<ox1 { out[ox] = 0 }
                    }
                    p += ox1 - ox0
                }
            }
        }
    }

    /// Adjoint of im2col: dx[ci, iy, ix] += col[r, p − p0]. Parallel over input
    /// channels, each of which owns its k·k rows, so writes never collide.
    func col2im<T: Scalar>(_ col: UnsafeMutablePointer<T>, pixels: Range<Int>, into dx: UnsafeMutablePointer<T>) {
        let np = pixels.count
        Parallel.forEach(cin, grain: 1) { channels in
            for ci in channels {
                let dst = dx + ci * h * w
                for ky in 0..<k {
                    for kx in 0..<k {
                        let src = col + ((ci * k + ky) * k + kx) * np
                        var p = pixels.lowerBound
                        while p < pixels.upperBound {
                            let oy = p / wo, ox0 = p % wo
                            let ox1 = min(wo, ox0 + (pixels.upperBound - p))
                            let iy = oy * stride - pad + ky
                            if iy >= 0 && iy < h {
                                let from = src + (p - pixels.lowerBound) - ox0
                                let row = dst + iy * w - pad + kx
                                for ox in validColumns(kx, ox0, ox1) { row[ox * stride] += from[ox] }
                            }
                            p += ox1 - ox0
                        }
                    }
                }
            }
        }
    }
}
