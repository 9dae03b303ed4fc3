/// The factors of one adapted linear layer W [out, in], row-major Float32.
public enum Factors: Sendable, Equatable {
    /// ΔW = scale · up · diag(m) · down, with down [R, in], up [out, R], scale = alpha / R.
    case lowRank(LowRank)
    /// ΔW = p · diag(λ ⊙ m) · q − p0 · diag(λ0 ⊙ m) · q0 (T-LoRA); q [R, in], p [out, R], λ [R].
    case ortho(Ortho)

    public var isOrtho: Bool {
        if case .ortho = self { return true }
        return false
    }

    public var rank: Int {
        switch self {
        case let .lowRank(f): return f.rank
        case let .ortho(f): return f.rank
        }
    }

    public var inFeatures: Int {
        switch self {
        case let .lowRank(f): return f.inFeatures
        case let .ortho(f): return f.inFeatures
        }
    }

    public var outFeatures: Int {
        switch self {
        case let .lowRank(f): return f.outFeatures
        case let .ortho(f): return f.outFeatures
        }
    }
}

public struct LowRank: Sendable, Equatable {
    public var down: [Float]
    public var up: [Float]
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int
    /// nil means alpha = rank (scale 1), as kohya and PEFT load files without alpha.
    public var alpha: Float?

    public init(down: [Float], up: [Float], rank: Int, inFeatures: Int, outFeatures: Int, alpha: Float?) {
        self.down = down
        self.up = up
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.alpha = alpha
    }

    public var scale: Float { rank == 0 ? 0 : (alpha ?? Float(rank)) / Float(rank) }
}

public struct Ortho: Sendable, Equatable {
    public var q: [Float]
    public var p: [Float]
    public var lambda: [Float]
    public var q0: [Float]
    public var p0: [Float]
    public var lambda0: [Float]
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public init(q: [Float], p: [Float], lambda: [Float], q0: [Float], p0: [Float], lambda0: [Float], rank: Int, inFeatures: Int, outFeatures: Int) {
        self.q = q
        self.p = p
        self.lambda = lambda
        self.q0 = q0
        self.p0 = p0
        self.lambda0 = lambda0
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }
}
