/// Why a training run cannot start or continue; each message names the setting or file at fault.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case badSetting(String)
    case badCheckpoint(String)
    case interrupted
    case numericFailure(String)
    case internalError(String)

    public var description: String {
        switch self {
        case let .badSetting(why): return why
        case let .badCheckpoint(why): return "cannot resume: \(why)"
        case .interrupted: return "interrupted"
        case let .numericFailure(why): return why
        case let .internalError(why): return "internal error: \(why)"
        }
    }
}
