extension RGBImage {
    /// The `width` × `height` region whose top-left pixel is (x, y); nil when it is empty or leaves the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> RGBImage? {
        guard w > 0, h > 0, x >= 0, y >= 0, x + w <= width, y + h <= height else { return nil }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for row in 0..<h {
            let s = ((y + row) * width + x) * 3
            out.replaceSubrange(row * w * 3..<(row + 1) * w * 3, with: pixels[s..<s + w * 3])
        }
        return RGBImage(checkedWidth: w, height: h, pixels: out)
    }

    /// The centred square of side s = min(width, height), its top-left at (⌊(width − s)/2⌋, ⌊(height − s)/2⌋)
    /// as the official T-LoRA trainer crops. (torchvision's `CenterCrop` rounds (width − s)/2 half to
    /// even instead, which differs by one pixel when that is k + ½ with k odd.)
    public func centerCropSquare() -> RGBImage {
        let side = Swift.min(width, height)
        return cropped(x: (width - side) / 2, y: (height - side) / 2, width: side, height: side)!
    }
}
