import Engine
import SafeTensors

/// Latents files of `sample`: one tensor `latents` [N, C, h, w] (the name diffusers' argument has).
enum LatentsFile {
    static func read(_ path: String) throws -> Tensor<Float> {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile.open(path) } catch { throw CommandFailure("\(path): \(error)") }
        guard let info = file.header.tensor(named: "latents") else {
            throw CommandFailure("\(path): no tensor 'latents' (want [N, 4, h/8, w/8])")
        }
        guard info.shape.count == 4, info.shape.allSatisfy({ $0 > 0 }), info.dtype.isConvertibleToFloat else {
            throw CommandFailure("\(path): 'latents' is \(info.dtype.rawValue) \(info.shape), want a float tensor [N, 4, h/8, w/8]")
        }
        let values = try file.floats(info)
        guard values.allSatisfy(\.isFinite) else { throw CommandFailure("\(path): 'latents' has NaN or infinite values") }
        return Tensor(shape: info.shape, values: values)
    }

    /// Writes `latents` as Float32 (atomically: a temporary file renamed into place).
    static func write(_ latents: Tensor<Float>, to path: String) throws {
        try SafeTensorsWriter.write(to: path, metadata: ["format": "pt"],
                                    tensors: [TensorSpec(name: "latents", dtype: .f32, shape: latents.shape)]) { _ in
            latents.array.withUnsafeBytes { Array($0) }
        }
    }
}
