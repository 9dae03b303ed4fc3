import Engine
import Foundation
import UNet

/// The memory estimate printed before the first step (docs/contract.md, "Training"): the UNet's frozen
/// weights as held (Float32 or bf16), the adapter with its gradients and AdamW moments, and the activations kept for backward, a
/// rough figure proportional to the latent area and the first level's width. The measured peak is printed
/// after the first step. It lives beside the run because it decides recomputation (`--recompute auto`).
public struct MemoryEstimate {
    public let weights: Int
    public let adapter: Int
    public let activations: Int
    /// Memory this process can still take (MemAvailable, bounded by a cgroup limit), measured with the
    /// UNet already loaded, so it is what activations and the optimizer state have left.
    public let available: Int?

    public init(unet: SDXLUNet, adapter: TrainableAdapter, settings: TrainingSettings, available: Int? = AvailableMemory.bytes()) {
        weights = unet.frozenWeightBytes
        // Trainable and frozen factors, gradients, two moments.
        let trainable = adapter.parameters.reduce(0) { $0 + $1.tensor.count }
        self.adapter = 4 * trainable * (adapter.method.isOrtho ? 5 : 4)
        let c = unet.config.blockOutChannels.first ?? 320
        let latentPixels = (settings.resolution / 8) * (settings.resolution / 8)
        // Kept activations per latent pixel per first-level channel (order of magnitude, from the layer list).
        activations = latentPixels * c * 2_100
        self.available = available
    }

    /// The figures themselves (tests of the decision).
    init(weights: Int, adapter: Int, activations: Int, available: Int?) {
        self.weights = weights
        self.adapter = adapter
        self.activations = activations
        self.available = available
    }

    /// Room kept free beside the estimate: scratch buffers, attention blocks, allocator slack, the freed
    /// tensor buffers kept for reuse (up to `TensorMemory.cachedLimit`), and the estimate's own roughness
    /// (a quarter of it).
    var margin: Int { (1 << 30) + TensorMemory.cachedLimit + activations / 4 }

    /// `--recompute auto` recomputes only when keeping every activation would not fit in the memory still
    /// available (with recomputation, activations shrink to block inputs plus one block's worth).
    /// (SDXL fp32 at 1024 px: 23 GB estimated without recomputation; 14.6 GB measured peak with it.)
    public func recompute(_ mode: RecomputeMode) -> (on: Bool, why: String) {
        switch mode {
        case .on: return (true, "activation recomputation on (--recompute on)")
        case .off: return (false, "activation recomputation off (--recompute off)")
        case .auto:
            let need = activations + adapter + margin
            guard let available else {
                return (false, "activation recomputation off (available memory unknown; --recompute on if memory runs out)")
            }
            let facts = "about \(Self.bytes(need)) needed with a margin, \(Self.bytes(available)) available"
            return need > available ? (true, "activation recomputation on: \(facts)") : (false, "activation recomputation off: \(facts)")
        }
    }

    public var summary: String {
        "memory estimate: UNet weights \(Self.bytes(weights)), adapter with optimizer state \(Self.bytes(adapter)), "
            + "activations about \(Self.bytes(activations)) (about a quarter of that with recomputation)"
    }

    public static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if v >= 1e9 { return String(format: "%.1f GB", v / 1e9) }
        if v >= 1e6 { return String(format: "%.0f MB", v / 1e6) }
        return String(format: "%.0f KB", v / 1e3)
    }
}

/// `--recompute`: whether the UNet keeps every activation for backward or recomputes blocks.
public enum RecomputeMode: String, CaseIterable, Sendable {
    case auto, on, off
}

/// Memory a process may still take: MemAvailable from /proc/meminfo, bounded by the cgroup's limit less its
/// usage when the process runs in a limited cgroup (containers, systemd slices). nil where neither is readable.
public enum AvailableMemory {
    public static func bytes() -> Int? {
        let system = meminfo("MemAvailable")
        guard let limit = cgroupFile("memory.max"), let used = cgroupFile("memory.current") else { return system }
        return min(system ?? Int.max, max(0, limit - used))
    }

    /// A "Key:   123 kB" line of /proc/meminfo, in bytes.
    static func meminfo(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
        }
        return nil
    }

    /// A number from this process's cgroup v2 folder ("max" and unreadable files give nil).
    static func cgroupFile(_ name: String) -> Int? {
        guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
              let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
        let path = "/sys/fs/cgroup" + line.dropFirst(3) + "/" + name
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Peak resident memory of this process so far (getrusage: kilobytes on Linux).
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
}
