import Engine
import Foundation
import Imaging
import SDXL
import TextEncoders
import VAE

/// Training images → the trainer's examples: decode (JPEG/PNG, EXIF orientation honoured, alpha on white),
/// center square crop, Lanczos resize to the resolution, [−1, 1], VAE posterior (encoded once), and the
/// micro-conditioning `[crop, crop, 0, 0, res, res]` of the official trainer. Tests train on exactly
/// what `tlkit train` trains on by calling these.
public enum TrainingData {
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Files as given, folders replaced by their JPEG/PNG files (sorted by name).
    public static func expand(_ inputs: [String]) throws -> [String] {
        var out: [String] = []
        for input in inputs {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isFolder) else {
                throw TrainingError.badSetting("\(input): no such image file or folder")
            }
            guard isFolder.boolValue else { out.append(input); continue }
            let names = try FileManager.default.contentsOfDirectory(atPath: input)
                .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".") }.sorted()
            guard !names.isEmpty else { throw TrainingError.badSetting("\(input): the folder holds no .jpg, .jpeg or .png image") }
            out += names.map { (input as NSString).appendingPathComponent($0) }
        }
        return out
    }

    /// The VAE the run encodes with: `--vae` when given, else the checkpoint's own.
    public static func autoencoder(settings: TrainingSettings, model: SDXLModel) throws -> AutoencoderKL {
        if let path = settings.vae { return try AutoencoderKL(path: path) }
        return try AutoencoderKL(model: model)
    }

    /// One example per image of `settings.images`; `log` gets a line per image (size, format, what was fixed).
    public static func examples(settings: TrainingSettings, vae: AutoencoderKL, log: (String) throws -> Void = { _ in }) throws -> [TrainingExample] {
        try examples(images: settings.images, resolution: settings.resolution, vae: vae, log: log)
    }

    public static func examples(images: [String], resolution res: Int, vae: AutoencoderKL,
                                log: (String) throws -> Void = { _ in }) throws -> [TrainingExample] {
        try images.map { path in
            let decoded = try ImageFile.decode(path: path)
            var notes: [String] = ["\(decoded.image.width)×\(decoded.image.height) \(decoded.format.rawValue)"]
            if decoded.orientation != .up { notes.append("EXIF orientation \(decoded.orientation.rawValue) applied") }
            if decoded.hadAlpha { notes.append("transparency composited on white") }
            let square = decoded.image.centerCropSquare()
            let crop = square.width
            if crop < res { notes.append("warning: the \(crop)-pixel square is upscaled to \(res)") }
            try log("image \(path): \(notes.joined(separator: ", "))")
            let pixels = square.width == res ? square : square.resized(to: res, filter: .lanczos)
            let tensor = Tensor<Float>(shape: [1, 3, res, res], values: pixels.toTensorCHW())
            let posterior = try vae.encode(images: tensor)
            return TrainingExample(mean: posterior.mean, std: posterior.std, timeIds: timeIds(crop: crop, resolution: res))
        }
    }

    /// SDXL's micro-conditioning as the official trainer sets it: original size = the center square's side,
    /// crop offset 0, target size = the training resolution.
    public static func timeIds(crop: Int, resolution res: Int) -> Tensor<Float> {
        Tensor<Float>(shape: [1, 6], values: [Float(crop), Float(crop), 0, 0, Float(res), Float(res)])
    }

    /// The prompt encoded once by the model's two text encoders; `log` gets its token count.
    public static func conditioning(prompt: String, model: SDXLModel, log: (String) throws -> Void = { _ in }) throws -> PromptConditioning {
        let encoders = try SDXLTextEncoders(model: model)
        let (context, pooled) = try encoders.conditioning(prompt)
        try log("prompt \"\(prompt)\" encoded once (\(context.shape[1]) tokens × \(context.shape[2]))")
        return PromptConditioning(context: context, pooled: pooled)
    }
}
