import Engine
import Foundation
import Imaging
import Sampling

/// The last step of `sample`: decoded images (`SamplingRun.decode`) → PNG files with an A1111-style
/// `parameters` text chunk.
enum SampleImages {
    /// Writes image i of `images` [N, 3, H, W] (in [−1, 1]) to `pattern` with {i} replaced by i, as 8-bit
    /// RGB (diffusers' postprocess: clamp(v/2 + 0.5)·255 rounded) with `parameters` as its PNG text chunk.
    /// Returns the paths written.
    @discardableResult
    static func write(images: Tensor<Float>, pattern: String, parameters: String) throws -> [String] {
        guard images.rank == 4, images.shape[1] == 3 else { throw CommandFailure("decoded images \(images.shape): want [N, 3, H, W]") }
        let (n, height, width) = (images.shape[0], images.shape[2], images.shape[3])
        let size = 3 * height * width
        return try (0..<n).map { i in
            let values = Array(UnsafeBufferPointer(start: images.data + i * size, count: size))
            guard let image = RGBImage(tensorCHW: values, width: width, height: height) else {
                throw CommandFailure("decoded image \(i) is not \(width)×\(height) RGB")
            }
            let destination = path(pattern, index: i)
            do {
                try ImageFile.encodePNG(image, textChunks: [PNGTextChunk("parameters", parameters)], to: destination)
            } catch {
                throw CommandFailure("\(error)")
            }
            return destination
        }
    }

    /// Output path of image `i`.
    static func path(_ pattern: String, index i: Int) -> String {
        pattern.replacingOccurrences(of: "{i}", with: String(i))
    }

    /// The A1111-style `parameters` text: prompt, negative prompt, then the settings line.
    static func parameters(prompt: String?, negative: String?, steps: Int, guidance: Double, seed: UInt64?,
                           width: Int, height: Int, model: String, adapters: [AdapterStack.Entry]) -> String {
        var lines = [prompt ?? ""]
        if let negative { lines.append("Negative prompt: \(negative)") }
        var settings = ["Steps: \(steps)", "Sampler: Euler", "Schedule type: Automatic", "CFG scale: \(guidance)"]
        if let seed { settings.append("Seed: \(seed)") }
        settings += ["Size: \(width)x\(height)", "Model: \(((model as NSString).lastPathComponent as NSString).deletingPathExtension)"]
        if !adapters.isEmpty {
            settings.append("Lora weights: \"\(adapters.map { "\($0.label): \($0.scale)" }.joined(separator: ", "))\"")
        }
        settings.append("Version: tlkit \(TLKitVersion.string)")
        lines.append(settings.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
