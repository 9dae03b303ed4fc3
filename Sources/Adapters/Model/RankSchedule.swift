/// The T-LoRA rank schedule r(t) = floor(((T − t) / T)^α · (R − r_min)) + r_min — the one place it is computed.
///
/// Evaluated in Float32 as the official PyTorch code does, so masks agree at exact-integer boundaries.
public struct RankSchedule: Equatable, Sendable, Codable {
    public var maxRank: Int
    public var minRank: Int
    public var rankAlpha: Double
    public var timesteps: Int

    public init(maxRank: Int, minRank: Int, rankAlpha: Double = 1, timesteps: Int = 1000) {
        self.maxRank = maxRank
        self.minRank = minRank
        self.rankAlpha = rankAlpha
        self.timesteps = timesteps
    }

    /// Number of mask entries kept at DDPM timestep `t` (0 … T, decimals allowed).
    public func rank(at t: Double) -> Int {
        let T = Float(timesteps)
        let clamped = min(max(Float(t), 0), T)
        let fraction = (T - clamped) / T
        let shaped = rankAlpha == 1 ? fraction : Float.pow(fraction, Float(rankAlpha))
        return Int(shaped * Float(maxRank - minRank)) + minRank
    }

    /// Components a module of `rank` keeps at timestep `t` when each mask index owns `componentsPerRank`
    /// of them (2 for a folded ortho module; more after merging).
    public func keptComponents(rank: Int, componentsPerRank: Int, at t: Double) -> Int {
        min(rank, componentsPerRank * self.rank(at: t))
    }

    /// Whether the schedule masks anything (unmasked methods store min = max).
    public var isMasked: Bool { minRank < maxRank }

    public enum ValidationError: Error, CustomStringConvertible, Equatable {
        case invalid(String)
        public var description: String { switch self { case let .invalid(why): return why } }
    }

    public func validate() throws {
        guard maxRank >= 1 else { throw ValidationError.invalid("max rank must be at least 1 (got \(maxRank))") }
        // r(t) is computed in Float32, exact for integers below 2²⁴; values read from metadata can be anything.
        guard maxRank <= RankSchedule.largestRank else { throw ValidationError.invalid("max rank \(maxRank) is above \(RankSchedule.largestRank)") }
        guard minRank >= 0, minRank <= maxRank else {
            throw ValidationError.invalid("min rank \(minRank) must be between 0 and the max rank \(maxRank)")
        }
        guard rankAlpha > 0, rankAlpha.isFinite else { throw ValidationError.invalid("rank alpha must be positive (got \(rankAlpha))") }
        guard timesteps >= 1, timesteps <= RankSchedule.largestRank else { throw ValidationError.invalid("timesteps must be between 1 and \(RankSchedule.largestRank) (got \(timesteps))") }
    }

    /// Bounds on ranks and counts read from files, far above any real adapter (SDXL's widest layer is 10240).
    public static let largestRank = 1 << 20
}

extension Float {
    static func pow(_ x: Float, _ y: Float) -> Float { Float(Foundation.pow(Double(x), Double(y))) }
}

import Foundation
