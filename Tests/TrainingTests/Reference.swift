import Adapters
import Engine
import Foundation
import SafeTensors
import SDXL
import TestSupport
@testable import Training
import UNet

/// The committed fixtures (found from this file, so tests run from any folder) and comparison helpers.
enum Reference {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static func tensors(_ relative: String) throws -> [String: Tensor<Float>] {
        let file = try SafeTensorsFile.open(path(relative))
        var out: [String: Tensor<Float>] = [:]
        for info in file.tensors {
            out[info.name] = Tensor(shape: info.shape.isEmpty ? [1] : info.shape, values: try file.floats(info))
        }
        return out
    }

    static let training: [String: Tensor<Float>] = try! tensors("reference/training.safetensors")

    static func unet() throws -> SDXLUNet {
        try SDXLUNet(model: try SDXLModel.open(path("models/tiny-sdxl")))
    }

    /// A trainer on the fixture UNet whose example is exactly the reference's z0 (σ = 0) with the UNet
    /// fixture's conditioning, starting from the official checkpoint of `adapterID`.
    static func trainer(adapterID: String, method: TrainingMethod, unet: SDXLUNet) throws -> Trainer {
        let inputs = try tensors("reference/unet_inputs.safetensors")
        let adapter = try TrainableAdapter.restored(
            from: try AdapterReader.read(path("adapters/\(adapterID)")), method: method, unet: unet)
        let z0 = training["z0"]!
        let example = TrainingExample(mean: z0, std: Tensor(zeros: z0.shape), timeIds: inputs["time_ids"]!)
        return Trainer(
            unet: unet, adapter: adapter,
            optimizer: AdamW(settings: AdamW.Settings(), shapes: adapter.parameters.map(\.tensor.shape)),
            examples: [example],
            conditioning: PromptConditioning(context: inputs["encoder_hidden_states"]!, pooled: inputs["text_embeds"]!),
            scalingFactor: 1, seed: 0)
    }

}
