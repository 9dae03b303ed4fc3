import SafeTensors

/// Where an input holds NaN or ±infinity: found by the reader, judged by `NonFinitePolicy`.
public struct NonFiniteFinding: Sendable, Equatable {
    /// The file (or `catalog:REF`) the values came from.
    public let path: String
    /// The canonical module name (what `diff` reports) and the module's name in the file (what messages say).
    public let module: String
    public let moduleInFile: String
    public let tensor: String

    public var description: String { "\(path): module \(moduleInFile) has NaN or infinite values in \(tensor)" }
}

/// The one rule for NaN and ±infinity in every command that computes with adapter or checkpoint values.
/// They are never silently used or produced: inputs holding them are refused, weights given on the
/// command line must be finite Float32 numbers, and a result that holds them — or that overflows its
/// output dtype, which stores such values as infinity (F16 above 65504) — is refused, each naming the
/// file or module. `allowed` (`--allow-nonfinite`) lets inputs and results through with a warning.
public struct NonFinitePolicy: Sendable {
    public var allowed: Bool

    public init(allowed: Bool = false) { self.allowed = allowed }

    public static let refuse = NonFinitePolicy(allowed: false)

    static let hint = "(give --allow-nonfinite to use it anyway)"

    /// Checks an adapter read from a file. Allowed, the findings come back as warnings.
    public func admit(_ adapter: Adapter) throws -> Adapter {
        guard let first = adapter.nonFinite.first else { return adapter }
        guard allowed else {
            let more = adapter.nonFinite.count > 1 ? " (and \(adapter.nonFinite.count - 1) more modules)" : ""
            throw AdapterError("\(first.description)\(more) \(NonFinitePolicy.hint)")
        }
        var result = adapter
        result.warnings += adapter.nonFinite.map(\.description)
        return result
    }

    /// Checks values read from a checkpoint before they are computed with.
    public func admit(_ values: [Float], file: String, tensor: String) throws {
        guard !allowed, values.contains(where: { !$0.isFinite }) else { return }
        throw AdapterError("\(file): tensor \(tensor) has NaN or infinite values \(NonFinitePolicy.hint)")
    }

    /// Checks a result tensor as encoded for the output, so values past the dtype's range count too.
    public func admit(encoded bytes: [UInt8], dtype: DType, tensor: String, module: String) throws {
        guard !allowed else { return }
        let count = bytes.count / max(1, dtype.bitSize / 8)
        guard bytes.withUnsafeBytes({ NonFiniteScan.any($0, dtype: dtype, count: count) }) else { return }
        throw AdapterError("\(module): the result has NaN or infinite values in \(tensor)\(NonFinitePolicy.rangeNote(dtype)); nothing was written \(NonFinitePolicy.hint)")
    }

    /// Checks final values that are not tensors of a module (sampled latents, images).
    public func admit(result values: UnsafeBufferPointer<Float>, what: String) throws {
        guard !allowed, values.contains(where: { !$0.isFinite }) else { return }
        throw AdapterError("\(what) has NaN or infinite values; nothing was written \(NonFinitePolicy.hint)")
    }

    static func rangeNote(_ dtype: DType) -> String {
        switch dtype {
        case .f16: return " (or values beyond F16's largest, 65504)"
        case .bf16, .f32: return " (or values beyond \(dtype.rawValue)'s largest, 3.4e38)"
        default: return ""
        }
    }

    /// Whether a weight or scale given on the command line can be computed with: finite, and finite once
    /// narrowed to Float32 (the factors are scaled in Float32).
    public static func isUsableWeight(_ weight: Double) -> Bool {
        weight.isFinite && Float(weight).isFinite
    }
}
