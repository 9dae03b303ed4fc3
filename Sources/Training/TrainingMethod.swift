import Adapters
import Foundation

/// Training chooses among the adapter methods; the enum lives with the adapter model so that files,
/// conversions and training name methods one way.
public typealias TrainingMethod = AdapterMethod

/// Which singular values of the random matrix become λ (the official `--sig_type`).
public enum InitSpectrum: String, CaseIterable, Codable, Sendable {
    /// The r smallest (the paper's choice: small λ, little overfitting).
    case last
    /// The r largest.
    case principal
    /// r from the middle, starting at ⌈(n − r) / 2⌉.
    case middle
}
