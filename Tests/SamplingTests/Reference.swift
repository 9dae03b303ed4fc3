import Engine
import Foundation
import SafeTensors
import TestSupport

/// The committed fixtures of group `sampling`, found from this file so tests run from any folder.
enum Reference {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static let model = path("models/tiny-sdxl")
    static let inputs = path("reference/sampling_inputs.safetensors")
    /// Settings of the reference runs (Fixtures/fixturegen/sampling.py).
    static let (height, width, steps, guidance): (Int, Int, Int, Float) = (64, 64, 5, 5)
    static let prompt = "a photo of sks dog riding a bike"

    static let outputs: [String: Tensor<Float>] = tensors("reference/sampling_outputs.safetensors")

    static func tensors(_ relative: String) -> [String: Tensor<Float>] {
        let file = try! SafeTensorsFile.open(path(relative))
        var out: [String: Tensor<Float>] = [:]
        for info in file.tensors { out[info.name] = Tensor(shape: info.shape, values: try! file.floats(info)) }
        return out
    }

}
