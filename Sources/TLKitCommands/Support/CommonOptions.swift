import Adapters
import ArgumentParser
import SafeTensors

/// `--max-rank/--min-rank/--rank-alpha`: the schedule of an official checkpoint without hparams, or the
/// one attached when a standard LoRA becomes a T-LoRA.
struct ScheduleOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Largest rank of the T-LoRA schedule (default: the adapter's rank).")
    var maxRank: Int?

    @Option(parsing: .unconditional, help: "Smallest rank of the T-LoRA schedule (r at t = T).")
    var minRank: Int?

    @Option(parsing: .unconditional, help: "Exponent alpha of the schedule r(t) = floor(((T - t)/T)^alpha * (R - r_min)) + r_min (default 1).")
    var rankAlpha: Double?

    var flags: ScheduleFlags { ScheduleFlags(maxRank: maxRank, minRank: minRank, rankAlpha: rankAlpha) }

    func validate() throws {
        if let r = maxRank, r < 1 { throw ValidationError("--max-rank must be at least 1") }
        if let r = minRank, r < 0 { throw ValidationError("--min-rank must not be negative") }
        if let a = rankAlpha, !(a > 0) { throw ValidationError("--rank-alpha must be positive") }
        if let lo = minRank, let hi = maxRank, lo > hi { throw ValidationError("--min-rank \(lo) is above --max-rank \(hi)") }
    }
}

/// Output dtype for writers.
enum OutputDType: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16

    var dtype: DType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// `--allow-nonfinite`: the one switch of `NonFinitePolicy`, on every command that computes with values.
struct NonFiniteOption: ParsableArguments {
    @Flag(help: "Compute with inputs holding NaN or infinity and write results holding them (refused by default).")
    var allowNonfinite = false

    var policy: NonFinitePolicy { NonFinitePolicy(allowed: allowNonfinite) }
}
