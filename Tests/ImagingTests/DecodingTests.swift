import Imaging
import Testing

/// Decoded pixels against Pillow's (Fixtures/fixturegen/images.py states the reference semantics).
@Suite struct DecodingTests {
    /// PNG decoding is lossless, so it must equal Pillow exactly.
    @Test(arguments: [
        ("rgb.png", false, 8), ("rgb16.png", false, 16), ("gray16.png", false, 16), ("rgba.png", true, 8),
        ("gray-alpha.png", true, 8), ("palette-trns.png", true, 4), ("bilevel.png", false, 1),
    ])
    func pngEqualsPillow(name: String, alpha: Bool, bitDepth: Int) throws {
        let decoded = try ImageFile.decode(path: ImagingFixtures.input(name))
        let expected = try ImagingFixtures.reference(name)
        let err = ImagingFixtures.maxDifference(decoded.image, expected)
        print("decode \(name): max difference \(err) levels")
        #expect(err == 0)
        #expect(decoded.format == .png)
        #expect(decoded.hadAlpha == alpha)
        #expect(decoded.bitDepth == bitDepth)
        #expect(decoded.orientation == .up)
    }

    /// JPEG decoders may differ by a level where libjpeg-turbo versions differ (Pillow bundles its own);
    /// both use the islow DCT and fancy upsampling, so the difference is 0 in practice; we allow 2 levels.
    @Test(arguments: ["photo-orient6.jpg", "gray.jpg", "cmyk.jpg"])
    func jpegMatchesPillow(name: String) throws {
        let decoded = try ImageFile.decode(path: ImagingFixtures.input(name))
        let expected = try ImagingFixtures.reference(name.replacingOccurrences(of: ".jpg", with: ".png"))
        let err = ImagingFixtures.maxDifference(decoded.image, expected)
        print("decode \(name): max difference \(err) levels")
        #expect(err <= 2)
        #expect(decoded.format == .jpeg)
        #expect(!decoded.hadAlpha)
    }

    @Test func photoIsTurnedUpright() throws {
        let decoded = try ImageFile.decode(path: ImagingFixtures.input("photo-orient6.jpg"))
        #expect(decoded.orientation == .rotate90Clockwise)
        #expect((decoded.image.width, decoded.image.height) == (61, 97))
    }

    /// Eight files with the same pixels and EXIF orientations 1–8 (plus a big-endian "MM" header),
    /// against Pillow's `ImageOps.exif_transpose`.
    @Test(arguments: ["orient1", "orient2", "orient3", "orient4", "orient5", "orient6", "orient7", "orient8", "orient8-bigendian"])
    func exifOrientationAsPillow(name: String) throws {
        let decoded = try ImageFile.decode(path: ImagingFixtures.input("\(name).jpg"))
        let expected = try ImagingFixtures.reference("\(name).png")
        let value = Int(name.dropFirst("orient".count).prefix(1))!
        #expect(decoded.orientation.rawValue == value)
        let err = ImagingFixtures.maxDifference(decoded.image, expected)
        print("orientation \(name): max difference \(err) levels")
        #expect(err <= 2)
        // The raw pixels turned the wrong way would be far off: the check can fail.
        if value != 1 {
            let unturned = try ImageFile.decode(path: ImagingFixtures.input("orient1.jpg")).image
            #expect(ImagingFixtures.maxDifference(unturned, expected) > 2)
        }
    }

    /// PNG carries EXIF in an eXIf chunk; Pillow's exif_transpose honours it, and so do we.
    @Test func pngExifOrientation() throws {
        let decoded = try ImageFile.decode(path: ImagingFixtures.input("exif-orient6.png"))
        #expect(decoded.orientation == .rotate90Clockwise)
        #expect(ImagingFixtures.maxDifference(decoded.image, try ImagingFixtures.reference("exif-orient6.png")) == 0)
    }

    @Test func demoImageDecodes() throws {
        let decoded = try ImageFile.decode(path: ImagingFixtures.root.appendingPathComponent("images/demo.jpg").path)
        #expect((decoded.image.width, decoded.image.height) == (512, 384))
    }
}
