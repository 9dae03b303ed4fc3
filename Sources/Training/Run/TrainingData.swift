import Engine
import Foundation
import Imaging
import SDXL
import Training
import VAE

/// Training images → the trainer's examples: decode (JPEG/PNG, EXIF orientation honoured, alpha on white),
/// center square crop, Lanczos resize to the resolution, [−1, 1], VAE posterior (encoded once), and the
/// micro-conditioning `[crop, crop, 0, 0, res, res]` of the official trainer.
enum TrainingImages {
    static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Files as given, folders replaced by their JPEG/PNG files (sorted by name).
    static func expand(_ inputs: [String]) throws -> [String] {
        var out: [String] = []
        for input in inputs {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isFolder) else {
                throw CommandFailure("\(input): no such image file or folder")
            }
            guard isFolder.boolValue else { out.append(input); continue }
            let names = try FileManager.default.contentsOfDirectory(atPath: input)
                .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".") }.sorted()
            guard !names.isEmpty else { throw CommandFailure("\(input): the folder holds no .jpg, .jpeg or .png image") }
            out += names.map { (input as NSString).appendingPathComponent($0) }
        }
        return out
    }

    /// The VAE the run encodes with: `--vae` when given, else the checkpoint's own.
    static func autoencoder(settings: TrainingSettings, model: SDXLModel) throws -> AutoencoderKL {
        if let path = settings.vae { return try AutoencoderKL(path: path) }
        return try AutoencoderKL(model: model)
    }

    static func examples(settings: TrainingSettings, vae: AutoencoderKL, log: (String) -> Void) throws -> [TrainingExample] {
        let res = settings.resolution
        return try settings.images.map { path in
            let decoded = try ImageFile.decode(path: path)
            var notes: [String] = ["\(decoded.image.width)×\(decoded.image.height) \(decoded.format.rawValue)"]
            if decoded.orientation != .up { notes.append("EXIF orientation \(decoded.orientation.rawValue) applied") }
            if decoded.hadAlpha { notes.append("transparency composited on white") }
            let square = decoded.image.centerCropSquare()
            let crop = square.width
            if crop < res { notes.append("warning: the \(crop)-pixel square is upscaled to \(res)") }
            log("image \(path): \(notes.joined(separator: ", "))")
            let pixels = square.width == res ? square : square.resized(to: res, filter: .lanczos)
            let tensor = Tensor<Float>(shape: [1, 3, res, res], values: pixels.toTensorCHW())
            let posterior = try vae.encode(images: tensor)
            let timeIds = Tensor<Float>(shape: [1, 6], values: [Float(crop), Float(crop), 0, 0, Float(res), Float(res)])
            return TrainingExample(mean: posterior.mean, std: posterior.std, timeIds: timeIds)
        }
    }
}
