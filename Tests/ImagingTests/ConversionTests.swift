import Foundation
import Imaging
import Testing

@Suite struct ConversionTests {
    /// [3, H, W] planes in [−1, 1]; v/255·2 − 1 in Float32.
    @Test func tensorLayoutAndScale() throws {
        let image = try #require(RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 10, 20, 30]))
        let t = image.toTensorCHW()
        let expected: [Float] = [0, 10, 128, 20, 255, 30].map { Float($0) / 255 * 2 - 1 }
        #expect(t == expected)
        #expect(t[0] == -1 && t[4] == 1)
    }

    /// Every level survives image → tensor → image.
    @Test func roundTripIsExact() throws {
        var levels: [UInt8] = []
        for v in 0..<256 { levels += [UInt8(v), UInt8(255 - v), UInt8((v * 7) % 256)] }
        let image = try #require(RGBImage(width: 16, height: 16, pixels: levels))
        let back = try #require(RGBImage(tensorCHW: image.toTensorCHW(), width: 16, height: 16))
        #expect(back == image)
    }

    /// diffusers' postprocess: ((x/2 + 0.5).clamp(0, 1) · 255).round(), half to even (values from numpy).
    @Test func postprocessAsDiffusers() throws {
        let x: [Float] = [-1.0, 1.0, 0.0, -1.5, 1.5, 0.5, -0.5, 0.003921568859368563, -0.003921568859368563,
                          -0.9960784316062927, -0.9882352948188782, -0.9803921580314636]
        let expected: [UInt8] = [0, 255, 128, 0, 255, 191, 64, 128, 127, 0, 1, 2]
        // One pixel wide, 4 high: the 12 values fill the three planes in order.
        let image = try #require(RGBImage(tensorCHW: x, width: 1, height: 4))
        let planes = (0..<3).flatMap { c in (0..<4).map { image.pixels[$0 * 3 + c] } }
        #expect(planes == expected)
        let nan = try #require(RGBImage(tensorCHW: [.nan, 0, 0], width: 1, height: 1))
        #expect(nan.pixels[0] == 0)
        #expect(RGBImage(tensorCHW: [0, 0], width: 1, height: 1) == nil)
    }

    /// Our PNG writer's pixels and text chunks read back; tEXt for Latin-1, iTXt otherwise; no temporary left.
    @Test func pngRoundTripWithText() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-imaging-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("out.png").path
        let image = try ImagingFixtures.reference("photo-square-lanczos32.png")
        let chunks = [
            PNGTextChunk("parameters", "a photo of sks dog\nNegative prompt: blurry\nSteps: 30, Sampler: Euler, CFG scale: 7, Seed: 42, Size: 32x32"),
            PNGTextChunk("Comment", "café, 日本, 🐶"),
            PNGTextChunk("Software", "tlkit"),
        ]
        try ImageFile.encodePNG(image, textChunks: chunks, to: path)
        let decoded = try ImageFile.decode(path: path)
        #expect(decoded.image == image)
        #expect(decoded.textChunks == chunks)
        #expect(decoded.text("parameters") == chunks[0].value)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("tEXtparameters") && text.contains("iTXtComment") && text.contains("tEXtSoftware"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["out.png"])
    }

    @Test func invalidTextChunksAreRefused() throws {
        let image = RGBImage(width: 1, height: 1, red: 1, green: 2, blue: 3)
        for bad in [PNGTextChunk("", "x"), PNGTextChunk(String(repeating: "k", count: 80), "x"),
                    PNGTextChunk(" lead", "x"), PNGTextChunk("日本", "x"), PNGTextChunk("k", "a\0b")] {
            let error = try #require(throws: ImageError.self) { try ImageFile.encodePNG(image, textChunks: [bad]) }
            guard case .invalidTextChunk = error.reason else { Issue.record("\(error)"); continue }
        }
        let missingFolder = try #require(throws: ImageError.self) {
            try ImageFile.encodePNG(image, to: "/nonexistent-folder/x.png")
        }
        #expect(missingFolder.description.hasPrefix("/nonexistent-folder/x.png"))
    }
}
