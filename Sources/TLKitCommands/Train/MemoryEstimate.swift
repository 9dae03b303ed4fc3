import Foundation
import SDXL
import Training
import UNet

/// The memory estimate printed before the first step (docs/contract.md, "Training"): the Float32 UNet
/// weights, the adapter with its gradients and AdamW moments, and the activations kept for backward, a
/// rough figure proportional to the latent area and the first level's width. The measured peak is printed
/// after the first step.
struct MemoryEstimate {
    let weights: Int
    let adapter: Int
    let activations: Int

    init(unet: SDXLUNet, adapter: TrainableAdapter, settings: TrainingSettings, model: SDXLModel) {
        weights = model.tensorNames(.unet).reduce(0) { $0 + 4 * (model.shape(.unet, $1)?.reduce(1, *) ?? 0) }
        // Trainable and frozen factors, gradients, two moments.
        let trainable = adapter.parameters.reduce(0) { $0 + $1.tensor.count }
        self.adapter = 4 * trainable * (adapter.method.isOrtho ? 5 : 4)
        let c = unet.config.blockOutChannels.first ?? 320
        let latentPixels = (settings.resolution / 8) * (settings.resolution / 8)
        // Kept activations per latent pixel per first-level channel (order of magnitude, from the layer list).
        activations = latentPixels * c * 2_100
    }

    /// `--recompute auto` turns recomputation on when keeping every activation would take more than half
    /// of the machine's memory (with it, activations shrink to block inputs plus one block's worth).
    func recompute(_ mode: RecomputeMode) -> Bool {
        switch mode {
        case .on: return true
        case .off: return false
        case .auto: return weights + adapter + activations > Int(ProcessInfo.processInfo.physicalMemory / 2)
        // (SDXL at 1024 px: 23 GB estimated without recomputation; 14.6 GB measured peak with it.)
        }
    }

    var summary: String {
        "memory estimate: UNet weights \(Self.bytes(weights)), adapter with optimizer state \(Self.bytes(adapter)), "
            + "activations about \(Self.bytes(activations)) (about a quarter of that with recomputation)"
    }

    static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e9 { return String(format: "%.1f GB", v / 1e9) }
        if v >= 1e6 { return String(format: "%.0f MB", v / 1e6) }
        return String(format: "%.0f KB", v / 1e3)
    }
}

/// Peak resident memory of this process so far (getrusage: kilobytes on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
