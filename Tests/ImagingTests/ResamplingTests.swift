import Imaging
import Testing

/// Crop and resize against Pillow, starting from Pillow's own decode (stored losslessly) so that only
/// the geometry is under test.
@Suite struct ResamplingTests {
    @Test func centerCropAsTheOfficialTrainer() throws {
        let photo = try ImagingFixtures.reference("photo-orient6.png")  // 61 × 97
        let square = photo.centerCropSquare()
        #expect(ImagingFixtures.maxDifference(square, try ImagingFixtures.reference("photo-square.png")) == 0)
        // 97 − 61 = 36 → offset 18; an odd excess rounds down: 62 − 61 = 1 → offset 0.
        let wide = RGBImage(width: 62, height: 61, red: 0, green: 0, blue: 0)
        #expect(wide.centerCropSquare().width == 61)
        #expect(photo.cropped(x: 0, y: 97, width: 1, height: 1) == nil)
    }

    /// Issue 7: within 2/255 of Pillow's LANCZOS; arithmetic and pass order are Pillow 13's, so we expect 0.
    /// 50×23 and 150×40 take the vertical pass first, the others the horizontal one.
    @Test(arguments: [
        ("photo-square.png", 32, 32, ResampleFilter.lanczos, "photo-square-lanczos32.png"),
        ("photo-square.png", 128, 128, .lanczos, "photo-square-lanczos128.png"),
        ("photo-orient6.png", 50, 23, .lanczos, "photo-lanczos-50x23.png"),
        ("photo-orient6.png", 150, 40, .lanczos, "photo-lanczos-150x40.png"),
        ("photo-orient6.png", 30, 80, .lanczos, "photo-lanczos-30x80.png"),
        ("photo-orient6.png", 90, 120, .lanczos, "photo-lanczos-90x120.png"),
        ("photo-square.png", 32, 32, .bilinear, "photo-bilinear-32.png"),
        ("photo-square.png", 32, 32, .bicubic, "photo-bicubic-32.png"),
    ])
    func resizeMatchesPillow(source: String, width: Int, height: Int, filter: ResampleFilter, expected: String) throws {
        let input = try ImagingFixtures.reference(source)
        let resized = input.resized(width: width, height: height, filter: filter)
        let reference = try ImagingFixtures.reference(expected)
        let err = ImagingFixtures.maxDifference(resized, reference)
        let differing = zip(resized.pixels, reference.pixels).filter { $0 != $1 }.count
        print("resize \(expected): max difference \(err)/255, \(differing) of \(reference.pixels.count) samples differ")
        #expect(err <= 2)
    }

    @Test func sameSizeIsUnchanged() throws {
        let photo = try ImagingFixtures.reference("photo-orient6.png")
        #expect(photo.resized(width: 61, height: 97) == photo)
    }
}
