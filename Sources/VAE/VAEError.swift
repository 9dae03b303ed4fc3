/// Why a VAE could not be loaded or run; each message is one line naming the file or the input.
public enum VAEError: Error, CustomStringConvertible, Equatable {
    /// The path holds no VAE weights (wrong kind of file or folder).
    case notAVAE(path: String, reason: String)
    case missingWeight(path: String, name: String)
    case badShape(path: String, name: String, expected: [Int], got: [Int])
    case badConfig(path: String, reason: String)
    case badInput(String)

    public var description: String {
        switch self {
        case let .notAVAE(path, reason): return "\(path): \(reason)"
        case let .missingWeight(path, name): return "\(path): VAE weight '\(name)' is missing"
        case let .badShape(path, name, expected, got):
            return "\(path): VAE weight '\(name)': expected shape \(expected), got \(got)"
        case let .badConfig(path, reason): return "\(path): cannot build the VAE: \(reason)"
        case let .badInput(why): return "VAE input: \(why)"
        }
    }
}
