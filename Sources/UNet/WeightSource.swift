import Engine
import SDXL

/// Where the UNet's frozen weights come from: diffusers names (without a `unet.` prefix) → Float32 tensors.
///
/// Loading goes through this one seam, so a later streaming or half-precision source can replace the
/// whole-model Float32 copy the fixture tests use.
public struct UNetWeightSource: Sendable {
    public let shape: @Sendable (String) -> [Int]?
    public let load: @Sendable (String) throws -> Tensor<Float>

    public init(shape: @escaping @Sendable (String) -> [Int]?, load: @escaping @Sendable (String) throws -> Tensor<Float>) {
        self.shape = shape
        self.load = load
    }

    /// The UNet of an SDXL checkpoint in either layout (single file or diffusers folder).
    public init(model: SDXLModel) {
        self.init(
            shape: { model.shape(.unet, $0) },
            load: { name in
                guard let shape = model.shape(.unet, name) else { throw UNetError.missingWeight(name) }
                return Tensor(shape: shape, values: try model.floats(.unet, name))
            })
    }

    func has(_ name: String) -> Bool { shape(name) != nil }

    func tensor(_ name: String, shape expected: [Int]? = nil) throws -> Tensor<Float> {
        let t = try load(name)
        if let expected, t.shape != expected { throw UNetError.badShape(name, expected: expected, got: t.shape) }
        return t
    }
}

public enum UNetError: Error, CustomStringConvertible, Equatable {
    case missingWeight(String)
    case badShape(String, expected: [Int], got: [Int])
    case noConfig(String)
    case badInput(String)
    case adapterMismatch(String)

    public var description: String {
        switch self {
        case let .missingWeight(name): return "UNet weight '\(name)' is missing"
        case let .badShape(name, expected, got): return "UNet weight '\(name)': expected shape \(expected), got \(got)"
        case let .noConfig(why): return "cannot build the UNet: \(why)"
        case let .badInput(why): return "UNet input: \(why)"
        case let .adapterMismatch(why): return "adapter does not fit the UNet: \(why)"
        }
    }
}
