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

    /// Sorts the adapter's UNet modules by whether a transformer Linear of the right shape takes them.
    public func fit(_ adapter: UNetAdapter) -> UNetAdapterFit {
        var fit = UNetAdapterFit(applicable: [], skipped: [], unused: [])
        for (path, module) in adapter.modules.sorted(by: { $0.key < $1.key }) {
            guard let layer = linears[path] else { fit.unused.append(path); continue }
            if let why = Self.mismatch(module, layer) {
                fit.skipped.append(.init(module: path, reason: why))
            } else {
                fit.applicable.append(path)
            }
        }
        return fit
    }

    /// Adds ΔW of every module of `adapter` (all components, no mask) to the weight of its Linear, once,
    /// so the layer costs nothing extra per call. The UNet's weights are its own Float32 copies of the
    /// checkpoint, so the sum is written in place; with `restorable` the loaded tensor is kept and the sum
    /// goes into a new one, for `restoreWeights` (twice the memory of the adapted layers). Throws when a
    /// module does not fit (use `fit` first).
    public func mergeIntoWeights(_ adapter: UNetAdapter, restorable: Bool = false) throws {
        guard precision == .fp32 else {
            throw UNetError.adapterMismatch("adapters are merged into the Float32 weights before the UNet switches to bf16")
        }
        for (path, module) in adapter.modules {
            guard let layer = linears[path] else { continue }
            if let why = Self.mismatch(module, layer) { throw UNetError.adapterMismatch("\(path) \(why)") }
            if restorable, unmergedWeights[path] == nil {
                unmergedWeights[path] = layer.weight
                layer.weight = Tensor<Float>(shape: layer.weight.shape, values: layer.weight.array)
            }
            Self.addDelta(module.factors, to: layer.weight)
        }
    }

    /// Puts back the loaded weights of every layer a restorable `mergeIntoWeights` changed.
    public func restoreWeights() {
        for (path, weight) in unmergedWeights { linears[path]?.weight = weight }
        unmergedWeights = [:]
    }

    /// w [out, in] += ΔW: scale · up · down, or p · diag(λ) · q − p0 · diag(λ0) · q0. Accumulated in
    /// Float32 straight into the weight, as the layer will compute; `Delta` (Float64, a new matrix) is the
    /// reference form that files and algebra use.
    static func addDelta(_ factors: AdapterFactors<Float>, to w: Tensor<Float>) {
        let (outF, inF) = (w.shape[0], w.shape[1])
        func add(_ left: Tensor<Float>, _ right: Tensor<Float>, alpha: Float) {
            let r = right.shape[0]
            Float.gemm(transA: false, transB: false, m: outF, n: inF, k: r, alpha: alpha,
                       a: left.data, lda: r, b: right.data, ldb: inF, beta: 1, c: w.data, ldc: inF)
        }
        /// diag(λ) · q [R, in].
        func scaledRows(_ q: Tensor<Float>, _ lambda: Tensor<Float>) -> Tensor<Float> {
            let out = Tensor<Float>(shape: q.shape, values: q.array)
            for i in 0..<q.shape[0] { for j in 0..<inF { out.data[i * inF + j] *= lambda.data[i] } }
            return out
        }
        switch factors {
        case let .lowRank(down, up, scale):
            add(up, down, alpha: scale)
        case let .ortho(q, p, lambda, q0, p0, lambda0):
            add(p, scaledRows(q, lambda), alpha: 1)
            add(p0, scaledRows(q0, lambda0), alpha: -1)
        }
    }
}
