/// Nearest-neighbour 2× upsampling (SDXL `Upsample2D` before its conv).
/// Shapes: x [B, C, H, W] → y [B, C, 2H, 2W], y[.., i, j] = x[.., i/2, j/2].
/// Backward (accumulating): dx[.., i, j] += Σ of the 2×2 block of dy it was copied to.
public enum Upsample2x {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(x: Tensor<T>, y: Tensor<T>) {
        let profiled = ProfiledOperation("upsample.forward")
        defer { profiled.end() }
        precondition(x.rank == 4, "Upsample2x wants x [B, C, H, W]")
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        expectShape(y, [x.shape[0], x.shape[1], 2 * h, 2 * w], "Upsample2x y")
        let xp = x.data, yp = y.data
        Parallel.forEach(planes, grain: max(1, 4096 / max(h * w, 1))) { ps in
            for p in ps {
                let src = xp + p * h * w, dst = yp + p * 4 * h * w
                for i in 0..<h {
                    let r0 = dst + 2 * i * 2 * w
                    for j in 0..<w {
                        r0[2 * j] = src[i * w + j]
                        r0[2 * j + 1] = src[i * w + j]
                    }
                    (r0 + 2 * w).update(from: r0, count: 2 * w)
                }
            }
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(dy: Tensor<T>, dx: Tensor<T>) {
        let profiled = ProfiledOperation("upsample.backward")
        defer { profiled.end() }
        precondition(dx.rank == 4, "Upsample2x wants dx [B, C, H, W]")
        let (planes, h, w) = (dx.shape[0] * dx.shape[1], dx.shape[2], dx.shape[3])
        expectShape(dy, [dx.shape[0], dx.shape[1], 2 * h, 2 * w], "Upsample2x dy")
        let dxp = dx.data, dyp = dy.data
        Parallel.forEach(planes, grain: max(1, 4096 / max(h * w, 1))) { ps in
            for p in ps {
                let src = dyp + p * 4 * h * w, dst = dxp + p * h * w
                for i in 0..<h {
                    let r0 = src + 2 * i * 2 * w, r1 = r0 + 2 * w
                    for j in 0..<w {
                        dst[i * w + j] += r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]
                    }
                }
            }
        }
    }
}

/// Concatenation along the channel dimension (UNet skip connections, torch.cat(dim=1)).
/// Shapes: parts[i] [B, C_i, *] → y [B, ΣC_i, *].
/// Backward (accumulating): dParts[i] += the matching channel slice of dy; nil parts are skipped.
public enum ChannelConcat {
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func forward<T: Scalar>(_ parts: [Tensor<T>], y: Tensor<T>) {
        let profiled = ProfiledOperation("concat.forward")
        defer { profiled.end() }
        let (batch, inner, total) = dims(parts.map(\.shape))
        expectShape(y, [batch, total] + parts[0].shape.dropFirst(2), "ChannelConcat y")
        var c0 = 0
        for part in parts {
            let c = part.shape[1]
            for b in 0..<batch {
                (y.data + (b * total + c0) * inner).update(from: part.data + b * c * inner, count: c * inner)
            }
            c0 += c
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    public static func backward<T: Scalar>(dy: Tensor<T>, dParts: [Tensor<T>?], shapes: [[Int]]) {
        let profiled = ProfiledOperation("concat.backward")
        defer { profiled.end() }
        let (batch, inner, total) = dims(shapes)
        precondition(dParts.count == shapes.count, "ChannelConcat: \(dParts.count) gradients, \(shapes.count) parts")
        expectShape(dy, [batch, total] + shapes[0].dropFirst(2), "ChannelConcat dy")
        var c0 = 0
        for (dPart, shape) in zip(dParts, shapes) {
            let c = shape[1]
            if let dPart {
                expectShape(dPart, shape, "ChannelConcat dPart")
                let n = c * inner
                Parallel.forEach(batch * n, grain: 16384) { r in
                    for i in r {
                        let b = i / n, j = i % n
                        dPart.data[i] += dy.data[(b * total + c0) * inner + j]
                    }
                }
            }
            c0 += c
        }
    }

    private static func dims(_ shapes: [[Int]]) -> (batch: Int, inner: Int, total: Int) {
        precondition(!shapes.isEmpty && shapes[0].count >= 2, "ChannelConcat wants parts [B, C, ...]")
        let first = shapes[0]
        for s in shapes {
            precondition(s.count == first.count && s[0] == first[0] && s.dropFirst(2) == first.dropFirst(2),
                         "ChannelConcat: \(s) does not match \(first)")
        }
        return (first[0], first.dropFirst(2).reduce(1, *), shapes.reduce(0) { $0 + $1[1] })
    }
}
