import Foundation
import SDXL
import Testing
@testable import Training
import VAE

/// Data preparation as `tlkit train` does it.
@Suite struct TrainingDataTests {
    /// The demo image is 512×384: its 384-pixel center square is the original size of SDXL's micro-conditioning.
    @Test func examplesCarryTheCropInTheirTimeIds() throws {
        let vae = try AutoencoderKL(model: try SDXLModel.open(Reference.path("models/tiny-sdxl")))
        var log: [String] = []
        let examples = try TrainingData.examples(images: [Reference.path("images/demo.jpg")], resolution: 64, vae: vae) { log.append($0) }
        #expect(examples.count == 1)
        #expect(examples[0].timeIds.array == [384, 384, 0, 0, 64, 64])
        #expect(examples[0].mean.shape == [1, 4, 8, 8] && examples[0].std.shape == [1, 4, 8, 8])
        #expect(log.count == 1 && log[0].contains("512×384 jpeg"), "\(log)")
    }

    /// Folders become their JPEG/PNG files sorted by name; a missing path or an imageless folder is refused.
    @Test func expandReplacesFoldersByTheirImages() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in ["b.PNG", "a.jpg", "notes.txt", ".hidden.jpg"] {
            FileManager.default.createFile(atPath: folder.appendingPathComponent(name).path, contents: Data())
        }
        #expect(try TrainingData.expand([folder.path])
            == ["a.jpg", "b.PNG"].map { folder.appendingPathComponent($0).path })
        #expect(throws: TrainingError.self) { try TrainingData.expand([folder.appendingPathComponent("none").path]) }
        let empty = folder.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(throws: TrainingError.self) { try TrainingData.expand([empty.path]) }
    }
}
