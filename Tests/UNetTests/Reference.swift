import Engine
import Foundation
import SafeTensors
import SDXL
import TestSupport
import UNet

/// The committed fixtures (found from this file, so tests run from any folder) and comparison helpers.
enum Reference {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    /// Model layouts: the diffusers folder and the single-file checkpoint hold the same weights.
    static let layouts: [String: String] = ["folder": "models/tiny-sdxl", "single-file": "models/tiny-sdxl.safetensors"]
    static let adapters: [String: String] = [
        "peft": "adapters/peft/pytorch_lora_weights.safetensors",
        "official-ortho": "adapters/official-ortho",
        "official-vanilla": "adapters/official-vanilla",
    ]
    static let timesteps: [Float] = [999, 500, 0]

    static func tensors(_ relative: String) throws -> [String: Tensor<Float>] {
        let file = try SafeTensorsFile.open(path(relative))
        var out: [String: Tensor<Float>] = [:]
        for info in file.tensors {
            out[info.name] = Tensor(shape: info.shape.isEmpty ? [1] : info.shape, values: try file.floats(info))
        }
        return out
    }

    struct Inputs {
        let latents, context, textEmbeds, timeIds, lossWeights: Tensor<Float>
    }

    static func inputs() throws -> Inputs {
        let t = try tensors("reference/unet_inputs.safetensors")
        return Inputs(latents: t["latents"]!, context: t["encoder_hidden_states"]!, textEmbeds: t["text_embeds"]!,
                      timeIds: t["time_ids"]!, lossWeights: t["loss_weights"]!)
    }

    static func unet(_ layout: String) throws -> SDXLUNet {
        try SDXLUNet(model: try SDXLModel.open(path(layouts[layout]!)))
    }

    /// A module's factor gradients by the names the reference files use.
    static func namedFactors(_ g: AdapterGradients<Float>) -> [(String, Tensor<Float>?)] {
        switch g {
        case let .lowRank(down, up): return [("down", down), ("up", up)]
        case let .ortho(q, p, lambda): return [("q", q), ("p", p), ("lambda", lambda)]
        }
    }

    /// ‖a − b‖ / ‖b − base‖: the error relative to the adapter's effect.
    static func effectRelative(_ a: Tensor<Float>, _ b: Tensor<Float>, base: Tensor<Float>) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<a.count {
            num += pow(Double(a[i]) - Double(b[i]), 2)
            den += pow(Double(b[i]) - Double(base[i]), 2)
        }
        return (num / den).squareRoot()
    }
}
