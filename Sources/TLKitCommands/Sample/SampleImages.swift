import Engine
import Foundation
import SDXL
import Sampling

/// The last step of `sample`: final latents → VAE decode → PNG files with an A1111-style `parameters`
/// text chunk. Decoding and PNG writing come from the VAE and Imaging targets; until they are part of
/// the build this step reports that images cannot be written yet (use --output-latents).
enum SampleImages {
    /// Fails before any work when `-o` cannot be honoured by this build.
    static func checkAvailable(_ pattern: String) throws {
        throw CommandFailure("-o \(pattern): writing PNG images is not available yet (no VAE decoder in this build); use --output-latents FILE")
    }

    /// Decodes latents [N, 4, h, w] (divided by the VAE's scaling factor first, as diffusers does) and
    /// writes image i to `pattern` with {i} replaced by i, each with `parameters` as its PNG text chunk.
    static func write(_ latents: Tensor<Float>, pattern: String, model: SDXLModel, parameters: String) throws {
        try checkAvailable(pattern)
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
