import Engine
import Foundation
import Imaging
import SafeTensors
@testable import TLKitCommands
import Testing

/// The PNG half of `sample -o`: diffusers' decoded image (fixture) → 8-bit PNG with the parameters chunk.
struct SampleImagesTests {
    @Test func decodedImagesBecomePNGsWithParameters() throws {
        let file = try SafeTensorsFile.open(CLI.fixture("reference/sampling_outputs.safetensors"))
        let info = try file.info("decoded/base0")
        let decoded = Tensor<Float>(shape: info.shape, values: try file.floats(info))
        let twice = Tensor<Float>(shape: [2] + info.shape.dropFirst(), values: decoded.array + decoded.array)
        let folder = CLI.temporaryFolder()
        let parameters = SampleImages.parameters(prompt: "a sks dog", negative: nil, steps: 5, guidance: 5, seed: 42,
                                                 width: 64, height: 64, model: "/m/tiny-sdxl.safetensors", adapters: [])
        #expect(parameters == "a sks dog\nSteps: 5, Sampler: Euler, Schedule type: Automatic, CFG scale: 5.0, Seed: 42, Size: 64x64, Model: tiny-sdxl, Version: tlkit \(TLKitVersion.string)")
        let paths = try SampleImages.write(images: twice, pattern: folder.appendingPathComponent("img-{i}.png").path, parameters: parameters)
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["img-0.png", "img-1.png"])
        let read = try ImageFile.decode(path: paths[1])
        #expect(read.text("parameters") == parameters)
        #expect(read.image == RGBImage(tensorCHW: decoded.array, width: 64, height: 64))
    }
}
