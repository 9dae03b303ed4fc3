import Adapters
import Engine

// The two factor models meet only here. Adapters' `Factors` hold a module's values as files and algebra
// see them ([Float], one module at a time); Engine's `AdapterFactors` hold the tensors the forward and
// backward passes use (shared by reference while training). Sampling converts file → Engine, training's
// checkpoints Engine → file.

extension AdapterFactors where T == Float {
    /// A module's factors as Engine tensors, with a user `weight` folded in: into the low-rank scale, or
    /// into both λ vectors of an ortho module, so that ΔW scales linearly with it.
    public init(_ factors: Factors, weight: Float = 1) {
        switch factors {
        case let .lowRank(f):
            self = .lowRank(down: Tensor(shape: [f.rank, f.inFeatures], values: f.down),
                            up: Tensor(shape: [f.outFeatures, f.rank], values: f.up), scale: f.scale * weight)
        case let .ortho(f):
            let (r, inF, outF) = (f.rank, f.inFeatures, f.outFeatures)
            self = .ortho(q: Tensor(shape: [r, inF], values: f.q), p: Tensor(shape: [outF, r], values: f.p),
                          lambda: Tensor(shape: [r], values: weight == 1 ? f.lambda : f.lambda.map { $0 * weight }),
                          q0: Tensor(shape: [r, inF], values: f.q0), p0: Tensor(shape: [outF, r], values: f.p0),
                          lambda0: Tensor(shape: [r], values: weight == 1 ? f.lambda0 : f.lambda0.map { $0 * weight }))
        }
    }
}

extension Factors {
    /// Copies of the current values of Engine factors (alpha nil when the scale is 1).
    public init(_ factors: AdapterFactors<Float>) {
        switch factors {
        case let .lowRank(down, up, scale):
            let r = down.shape[0]
            self = .lowRank(LowRank(down: down.array, up: up.array, rank: r, inFeatures: down.shape[1], outFeatures: up.shape[0],
                                    alpha: scale == 1 ? nil : scale * Float(r)))
        case let .ortho(q, p, lambda, q0, p0, lambda0):
            self = .ortho(Ortho(q: q.array, p: p.array, lambda: lambda.array, q0: q0.array, p0: p0.array, lambda0: lambda0.array,
                                rank: q.shape[0], inFeatures: q.shape[1], outFeatures: p.shape[0]))
        }
    }
}
