import CDNNL
import Foundation

/// The arithmetic of the frozen products (Linear, convolution) of a model.
///
/// `fp32`: Float32 everywhere through OpenBLAS and our own kernels (bit for bit what the reference
/// fixtures check). `bf16`: frozen weights rounded to bf16 once, the products on oneDNN's bf16 kernels with
/// Float32 accumulation; norms, softmax, residuals, adapters and the optimizer stay Float32 — what
/// `torch.autocast("cpu", dtype=torch.bfloat16)` does to the same network.
public enum Precision: String, Codable, Sendable, CaseIterable {
    case fp32, bf16

    /// bf16 where the processor multiplies bf16 natively (AVX-512 BF16 or AMX), else fp32: without those
    /// instructions oneDNN emulates bf16 and runs slower than Float32.
    public static var automatic: Precision { hardwareHasBF16 ? .bf16 : .fp32 }

    /// Whether oneDNN finds native bf16 instructions on this processor.
    public static let hardwareHasBF16: Bool = {
        let isa = dnnl_get_effective_cpu_isa()
        // The ISA values nest as bit masks: every set including AVX-512 BF16 contains its bits.
        return isa.rawValue & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue
    }()

    /// Why `automatic` chose what it chose, for the run's log.
    public static var automaticReason: String {
        hardwareHasBF16 ? "the processor has AVX-512 BF16" : "the processor has no native bf16 arithmetic (AVX-512 BF16 or AMX)"
    }
}
