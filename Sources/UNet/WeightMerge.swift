import Adapters
import Engine

/// How an adapter's UNet modules fit this UNet's Linear layers.
public struct UNetAdapterFit: Sendable, Equatable {
    /// Module paths that match a transformer Linear of the right shape.
    public var applicable: [String]
    /// Module paths that name a layer but do not fit it, with the reason.
    public var skipped: [Skipped]
    /// Module paths this UNet has no Linear for (e.g. blocks a smaller model lacks).
    public var unused: [String]

    public struct Skipped: Sendable, Equatable {
        public var module: String
        public var reason: String

        public init(module: String, reason: String) {
            self.module = module
            self.reason = reason
        }
    }
}

extension SDXLUNet {
    /// Every Linear an adapter may adapt: attention projections, ff and proj_in/proj_out of every transformer.
    public var linearModules: [String] { linears.keys.sorted() }

    /// Sorts the adapter's UNet modules by whether a transformer Linear of the right shape takes them
    /// (from the file's module shapes; no factor is read).
    public func fit(_ adapter: Adapter) -> UNetAdapterFit {
        var fit = UNetAdapterFit(applicable: [], skipped: [], unused: [])
        for (index, path) in adapter.unetModules.sorted(by: { $0.path < $1.path }) {
            guard let layer = linears[path] else { fit.unused.append(path); continue }
            let info = adapter.modules[index]
            if let why = Self.mismatch(outFeatures: info.outFeatures, inFeatures: info.inFeatures, layer) {
                fit.skipped.append(.init(module: path, reason: why))
            } else {
                fit.applicable.append(path)
            }
        }
        return fit
    }

    /// Adds `weight` · ΔW of the adapter's UNet modules (all components, no mask; `paths`: only those) to
    /// the weights of their Linears, once, so the layers cost nothing extra per call. ΔW is the adapter's
    /// own (`Adapter.delta`, the one routine every command uses). The UNet's weights are its own Float32
    /// copies of the checkpoint, so the sum is written in place; with `restorable` the loaded tensor is
    /// kept and the sum goes into a new one, for `restoreWeights` (twice the memory of the adapted layers).
    /// Modules this UNet has no Linear for are left out; one that does not fit its layer throws (use
    /// `fit` first).
    public func mergeIntoWeights(_ adapter: Adapter, weight: Float = 1, only paths: Set<String>? = nil, restorable: Bool = false) throws {
        guard precision == .fp32 else {
            throw UNetError.adapterMismatch("adapters are merged into the Float32 weights before the UNet switches to bf16")
        }
        for (index, path) in adapter.unetModules where paths?.contains(path) ?? true {
            guard let layer = linears[path] else { continue }
            let info = adapter.modules[index]
            if let why = Self.mismatch(outFeatures: info.outFeatures, inFeatures: info.inFeatures, layer) {
                throw UNetError.adapterMismatch("\(path) \(why)")
            }
            let delta = try adapter.delta(index, at: nil, weight: weight)
            if restorable, unmergedWeights[path] == nil {
                unmergedWeights[path] = layer.weight
                layer.weight = Tensor<Float>(shape: layer.weight.shape, values: layer.weight.array)
            }
            let w = layer.weight.data
            for j in 0..<delta.count { w[j] += delta[j] }
        }
    }

    /// Puts back the loaded weights of every layer a restorable `mergeIntoWeights` changed.
    public func restoreWeights() {
        for (path, weight) in unmergedWeights { linears[path]?.weight = weight }
        unmergedWeights = [:]
    }
}

extension Adapter {
    /// The UNet's modules: index in `modules`, and path inside the UNet (`down_blocks.1.…to_q`).
    var unetModules: [(index: Int, path: String)] {
        modules.enumerated().compactMap { i, info in
            info.component == "unet" ? (i, String(info.name.dropFirst("unet.".count))) : nil
        }
    }
}
