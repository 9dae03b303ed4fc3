import Adapters
import Engine
import SafeTensors
import UNet

/// The adapter being trained: Engine tensors for every adapted UNet projection, shared (not copied) with
/// the UNet hook, so an optimizer step is seen by the next forward pass without rebuilding anything.
public final class TrainableAdapter {
    public let method: TrainingMethod
    public let schedule: RankSchedule
    /// Module paths inside the UNet, sorted (the order of parameters, gradients and optimizer state).
    public let paths: [String]
    public private(set) var factors: [String: AdapterFactors<Float>]

    init(method: TrainingMethod, schedule: RankSchedule, factors: [String: AdapterFactors<Float>]) {
        self.method = method
        self.schedule = schedule
        self.paths = factors.keys.sorted()
        self.factors = factors
    }

    /// Fresh factors for every adaptable projection of `unet` (to_q, to_k, to_v, to_out.0 of attn1 and attn2).
    public static func initialized(
        for unet: SDXLUNet, method: TrainingMethod, rank: Int, minRank: Int, rankAlpha: Double,
        spectrum: InitSpectrum, seed: UInt64
    ) throws -> TrainableAdapter {
        let schedule = RankSchedule(maxRank: rank, minRank: method.isMasked ? minRank : rank, rankAlpha: rankAlpha)
        try schedule.validate()
        var factors: [String: AdapterFactors<Float>] = [:]
        for (i, path) in unet.adaptableModules.enumerated() {
            let (inF, outF) = unet.projectionShape(path)!
            do {
                factors[path] = try AdapterInitializer.factors(
                    inFeatures: inF, outFeatures: outF, rank: rank, method: method, spectrum: spectrum,
                    random: RandomStream(seed: seed, purpose: .initialization, step: 0, substream: i))
            } catch {
                throw TrainingError.badSetting("\(path): \(error)")
            }
        }
        return TrainableAdapter(method: method, schedule: schedule, factors: factors)
    }

    /// What the UNet hook binds: masked by r(t) for T-LoRA methods, every component otherwise.
    public var unetAdapter: UNetAdapter {
        UNetAdapter(factors: factors, schedule: method.isMasked ? schedule : nil)
    }

    /// Trainable tensors in a fixed order with stable names (`<path>.<factor>`); frozen copies excluded.
    public var parameters: [(name: String, tensor: Tensor<Float>)] {
        paths.flatMap { path -> [(name: String, tensor: Tensor<Float>)] in
            switch factors[path]! {
            case let .lowRank(down, up, _): return [("\(path).down", down), ("\(path).up", up)]
            case let .ortho(q, p, lambda, _, _, _): return [("\(path).q", q), ("\(path).p", p), ("\(path).lambda", lambda)]
            }
        }
    }

    /// Gradients of one backward pass in the order of `parameters`.
    func gradients(_ g: UNetGradients) throws -> [Tensor<Float>] {
        try paths.flatMap { path -> [Tensor<Float>] in
            switch g.factors[path] {
            case let .lowRank(down?, up?): return [down, up]
            case let .ortho(q?, p?, lambda?): return [q, p, lambda]
            default: throw TrainingError.internalError("no gradient for \(path)")
            }
        }
    }
}

extension TrainableAdapter {
    /// The adapter as the Adapters model sees it (for writing checkpoints in any format), with copies of
    /// the current values.
    public func snapshot(metadata: [String: String]) -> Adapter {
        var infos: [ModuleInfo] = [], all: [Factors] = []
        for path in paths {
            let f = Factors(factors[path]!)
            infos.append(ModuleInfo(name: "unet.\(path)", isOrtho: f.isOrtho, rank: f.rank, inFeatures: f.inFeatures,
                                    outFeatures: f.outFeatures, dtype: .f32))
            all.append(f)
        }
        return Adapter(format: .tlkit, method: method, schedule: schedule, componentsPerRank: 1,
                       modules: infos, metadata: metadata, source: InMemoryFactors(all))
    }

    /// Restores the factors of a checkpoint written by `snapshot` (resume); modules and shapes must agree.
    public static func restored(from adapter: Adapter, method: TrainingMethod, unet: SDXLUNet) throws -> TrainableAdapter {
        guard let schedule = adapter.schedule else { throw TrainingError.badCheckpoint("the checkpoint has no rank schedule") }
        let expected = Set(unet.adaptableModules)
        // The UNet hook's conversion of file factors to Engine tensors, then the method's kind checked.
        let converted = try UNetAdapter(adapter)
        if let other = converted.otherComponents.first {
            throw TrainingError.badCheckpoint("module \(other) is not an attention projection of this UNet")
        }
        var factors: [String: AdapterFactors<Float>] = [:]
        for (path, module) in converted.modules {
            guard expected.contains(path) else {
                throw TrainingError.badCheckpoint("module unet.\(path) is not an attention projection of this UNet")
            }
            switch module.factors {
            case let .lowRank(down, up, _) where !method.isOrtho:
                factors[path] = .lowRank(down: down, up: up, scale: 1)
            case .ortho where method.isOrtho:
                factors[path] = module.factors
            default:
                throw TrainingError.badCheckpoint("module unet.\(path) does not have the factors of method \(method.rawValue)")
            }
        }
        guard factors.count == expected.count else {
            throw TrainingError.badCheckpoint("the checkpoint has \(factors.count) modules, the UNet \(expected.count)")
        }
        return TrainableAdapter(method: method, schedule: schedule, factors: factors)
    }
}
