import Foundation
import Engine

/// AdamW with decoupled weight decay, step for step as `torch.optim.AdamW` (single-tensor path, Float32
/// tensors, Python-double scalars rounded to Float32 where torch rounds them):
///   p ← p·(1 − lr·wd);  m ← m + (1 − β1)(g − m);  v ← β2·v + (1 − β2)·g·g;
///   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε).
/// Every element is updated every step, masked T-LoRA components included (their gradient is zero, but
/// momentum and weight decay still move them, as in the official training).
public final class AdamW {
    public struct Settings: Codable, Equatable, Sendable {
        public var learningRate: Double
        public var beta1: Double
        public var beta2: Double
        public var epsilon: Double
        public var weightDecay: Double

        public init(learningRate: Double = 1e-4, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 1e-4) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    public let settings: Settings
    /// First and second moments, one pair per parameter, in the parameters' order.
    public private(set) var firstMoments: [Tensor<Float>]
    public private(set) var secondMoments: [Tensor<Float>]
    /// Updates done so far (torch's `step`).
    public private(set) var step: Int

    public init(settings: Settings, shapes: [[Int]]) {
        self.settings = settings
        firstMoments = shapes.map { Tensor(zeros: $0) }
        secondMoments = shapes.map { Tensor(zeros: $0) }
        step = 0
    }

    /// Restores saved moments (resume); shapes must be those of the parameters.
    public init(settings: Settings, firstMoments: [Tensor<Float>], secondMoments: [Tensor<Float>], step: Int) {
        self.settings = settings
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
        self.step = step
    }

    /// One update of every parameter in place with its gradient.
    public func update(_ parameters: [Tensor<Float>], gradients: [Tensor<Float>]) {
        precondition(parameters.count == firstMoments.count && gradients.count == parameters.count, "AdamW: parameter count changed")
        step += 1
        let s = settings
        let decay = Float(1 - s.learningRate * s.weightDecay)
        let oneMinusBeta1 = Float(1 - s.beta1), beta2 = Float(s.beta2), oneMinusBeta2 = Float(1 - s.beta2)
        let bias1 = 1 - Foundation.pow(s.beta1, Double(step)), bias2 = 1 - Foundation.pow(s.beta2, Double(step))
        let stepSize = Float(s.learningRate / bias1), bias2Root = Float(bias2.squareRoot()), eps = Float(s.epsilon)
        for (i, p) in parameters.enumerated() {
            let g = gradients[i], m = firstMoments[i], v = secondMoments[i]
            precondition(p.shape == g.shape && p.shape == m.shape, "AdamW: \(p.shape) vs \(g.shape)")
            let pp = p.data, gp = g.data, mp = m.data, vp = v.data
            Parallel.forEach(p.count, grain: 1 << 14) { range in
                for j in range {
                    pp[j] *= decay
                    mp[j] += oneMinusBeta1 * (gp[j] - mp[j])
                    vp[j] = vp[j] * beta2 + oneMinusBeta2 * gp[j] * gp[j]
                    let denom = vp[j].squareRoot() / bias2Root + eps
                    pp[j] += -stepSize * (mp[j] / denom)
                }
            }
        }
    }
}
