import Foundation

/// The settings of diffusers' `EulerDiscreteScheduler` that tlkit supports, defaulting to SDXL's
/// (`scheduler/scheduler_config.json` of the SDXL base model).
public struct SchedulerConfig: Equatable, Sendable {
    public enum Spacing: String, Sendable { case leading, linspace, trailing }

    public var trainTimesteps = 1000
    public var betaStart = 0.00085
    public var betaEnd = 0.012
    public var spacing = Spacing.leading
    public var stepsOffset = 1

    public init() {}

    /// SDXL's settings.
    public static let sdxl = SchedulerConfig()

    /// Reads a diffusers `scheduler_config.json`; settings tlkit cannot reproduce are a clear error
    /// instead of silently different samples.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SamplingError.badConfig("\(path): not a JSON object")
        }
        func value<T>(_ key: String, _ fallback: T) throws -> T {
            guard let v = json[key], !(v is NSNull) else { return fallback }
            guard let typed = v as? T else { throw SamplingError.badConfig("\(path): '\(key)' has an unexpected type") }
            return typed
        }
        func require(_ key: String, _ allowed: [String]) throws {
            let v: String = try value(key, allowed[0])
            guard allowed.contains(v) else {
                throw SamplingError.badConfig("\(path): \(key) '\(v)' is not supported (only \(allowed.joined(separator: ", ")))")
            }
        }
        try require("beta_schedule", ["scaled_linear"])
        try require("prediction_type", ["epsilon"])
        try require("interpolation_type", ["linear"])
        try require("final_sigmas_type", ["zero"])
        try require("timestep_type", ["discrete"])
        for flag in ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr"] {
            if try value(flag, false) { throw SamplingError.badConfig("\(path): \(flag) is not supported") }
        }
        if json["trained_betas"].map({ !($0 is NSNull) }) ?? false {
            throw SamplingError.badConfig("\(path): trained_betas are not supported")
        }
        trainTimesteps = try value("num_train_timesteps", 1000)
        betaStart = try value("beta_start", 0.00085)
        betaEnd = try value("beta_end", 0.012)
        stepsOffset = try value("steps_offset", 0)
        let spacingName: String = try value("timestep_spacing", "linspace")
        guard let s = Spacing(rawValue: spacingName) else {
            throw SamplingError.badConfig("\(path): timestep_spacing '\(spacingName)' is not supported")
        }
        spacing = s
        guard trainTimesteps >= 2, betaStart > 0, betaEnd > 0 else {
            throw SamplingError.badConfig("\(path): num_train_timesteps, beta_start and beta_end must be positive")
        }
    }
}

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case badConfig(String)
    case badInput(String)

    public var description: String {
        switch self {
        case let .badConfig(why): return "scheduler configuration: \(why)"
        case let .badInput(why): return why
        }
    }
}
