extension RGBImage {
    /// The pixels as a [3, height, width] Float32 tensor (channel-major) in [−1, 1]: v/255·2 − 1, bitwise
    /// equal to torchvision's `ToTensor` + `Normalize([0.5], [0.5])` and to diffusers' `VaeImageProcessor`.
    public func toTensorCHW() -> [Float] {
        let plane = width * height
        var out = [Float](repeating: 0, count: 3 * plane)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<plane {
                    for c in 0..<3 {
                        dst[c * plane + i] = Float(src[i * 3 + c]) / 255 * 2 - 1
                    }
                }
            }
        }
        return out
    }

    /// An image from a decoded [3, height, width] tensor in [−1, 1], as diffusers' `VaeImageProcessor.postprocess`
    /// + `numpy_to_pil`: clamp(v/2 + 0.5, 0, 1)·255 rounded half to even (NaN becomes 0). Nil when the
    /// count is not 3·height·width or a side is not positive.
    public init?(tensorCHW values: [Float], width: Int, height: Int) {
        guard width > 0, height > 0, values.count == 3 * width * height else { return nil }
        let plane = width * height
        var out = [UInt8](repeating: 0, count: 3 * plane)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<plane {
                    for c in 0..<3 {
                        let v = src[c * plane + i]
                        let unit = Swift.min(Swift.max(v / 2 + 0.5, 0), 1)
                        dst[i * 3 + c] = v.isNaN ? 0 : UInt8((unit * 255).rounded(.toNearestOrEven))
                    }
                }
            }
        }
        self.init(checkedWidth: width, height: height, pixels: out)
    }
}
