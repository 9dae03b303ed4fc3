import Engine
import Foundation
import SafeTensors
import TestSupport

/// The committed fixtures, found from this file so tests run from any folder.
enum Reference {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static let layouts: [String: String] = ["folder": "models/tiny-sdxl", "single-file": "models/tiny-sdxl.safetensors"]

    /// The tensors of Fixtures/reference/vae.safetensors (see Fixtures/README.md).
    static let tensors: [String: Tensor<Float>] = {
        let file = try! SafeTensorsFile.open(path("reference/vae.safetensors"))
        var out: [String: Tensor<Float>] = [:]
        for info in file.tensors { out[info.name] = Tensor(shape: info.shape, values: try! file.floats(info)) }
        return out
    }()

    /// A scratch folder removed when the test's value goes away.
    final class TemporaryFolder {
        let path: String
        init() throws {
            path = NSTemporaryDirectory() + "vae-tests-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    }

    /// Copies the tensors of `source` accepted by `rename` (nil drops one) into a new file at `path`.
    static func copyTensors(from source: String, to path: String, rename: (String) -> String?) throws {
        let file = try SafeTensorsFile.open(source)
        var names: [String: TensorInfo] = [:]
        for info in file.tensors { if let new = rename(info.name) { names[new] = info } }
        let specs = names.keys.sorted().map { TensorSpec(name: $0, dtype: names[$0]!.dtype, shape: names[$0]!.shape) }
        try SafeTensorsWriter.write(to: path, metadata: [:], tensors: specs) { info in
            Array(file.rawBytes(names[info.name]!))
        }
    }
}
