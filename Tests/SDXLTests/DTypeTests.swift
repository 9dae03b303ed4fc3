import Foundation
import SafeTensors
import Testing
@testable import SDXL

/// fp16 fixtures, plus bf16 and fp32 copies written here with the project's writer.
struct DTypeTests {
    @Test(arguments: [DType.bf16, .f32])
    func unetFileInOtherPrecisions(_ dtype: DType) throws {
        let source = try SafeTensorsFile.open(FixturePaths.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-dtype-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("unet.safetensors").path
        try SafeTensorsWriter.write(to: path, metadata: [:], tensors: source.tensors.map { TensorSpec(name: $0.name, dtype: dtype, shape: $0.shape) }) { info in
            FloatConversion.fromFloat32(try source.floats(info.name), dtype: dtype)
        }
        let converted = try SDXLModel.open(path)
        let original = try SDXLModel.open(source.path)
        #expect(converted.unetConfig == original.unetConfig)
        #expect(converted.files[0].tensors.allSatisfy { $0.dtype == dtype })
        for name in original.tensorNames(.unet) {
            let a = try original.floats(.unet, name), b = try converted.floats(.unet, name)
            // bf16 keeps 8 significant bits: relative rounding error at most 2^-8.
            let tolerance: Float = dtype == .bf16 ? 1.0 / 256 : 0
            let worst = zip(a, b).map { abs($0 - $1) / max(abs($0), 1e-30) }.max() ?? 0
            #expect(worst <= tolerance, "\(name): relative error \(worst)")
        }
    }
}
