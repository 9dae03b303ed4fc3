import ArgumentParser
import Engine

/// `--precision`: the arithmetic of the frozen model in the commands that run the UNet (train, sample).
struct PrecisionOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "fp32, bf16 or auto (the default): bf16 where the processor multiplies bf16 natively (AVX-512 BF16 or AMX), else fp32.",
        discussion: "bf16 rounds the frozen weights once and runs Linears and convolutions on oneDNN's bf16 kernels with "
            + "Float32 accumulation (about twice the speed, half the weight memory); norms, attention softmax, residuals, "
            + "the adapter and the optimizer stay Float32, as with torch.autocast. fp32 reproduces the reference outputs."))
    var precision: PrecisionChoice?

    func validate() throws {
        if precision == .bf16, !Precision.hardwareHasBF16 {
            throw ValidationError("--precision bf16 needs a processor with AVX-512 BF16 or AMX (this one has neither); use fp32")
        }
    }

    var resolved: Precision {
        switch precision ?? .auto {
        case .auto: return .automatic
        case .fp32: return .fp32
        case .bf16: return .bf16
        }
    }

    /// The choice and, for auto, why (printed before the long part).
    var summary: String {
        (precision ?? .auto) == .auto ? "precision \(resolved.rawValue) (auto: \(Precision.automaticReason))" : "precision \(resolved.rawValue)"
    }
}

enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, fp32, bf16
}
