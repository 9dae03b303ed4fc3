import Adapters
import Engine
import Foundation
import SDXL
import UNet

/// One training run, the whole recipe: prepares a new run (or restores one with `resume`), runs the steps,
/// writes checkpoints and the final adapter, and when `shouldStop` turns true saves the last completed
/// step as a checkpoint. Settings in, events out, as a command or a test drives it.
public struct TrainingRun {
    /// The settings asked for; on resume the run's recorded settings win, except its length and checkpoint spacing.
    public var settings: TrainingSettings
    public let output: String
    public let resume: Bool
    public var recompute: RecomputeMode
    /// Polled during and between steps; true abandons the step in flight and ends the run with a checkpoint.
    public var shouldStop: () -> Bool

    public init(settings: TrainingSettings, output: String, resume: Bool = false, recompute: RecomputeMode = .auto,
                shouldStop: @escaping () -> Bool = { false }) {
        self.settings = settings
        self.output = output
        self.resume = resume
        self.recompute = recompute
        self.shouldStop = shouldStop
    }

    /// Runs to the end, to an interruption, or not at all when a resumed run is already long enough.
    /// `events` may throw (a caller's catalog add failing stops the run as a failed write would).
    public func run(events: (TrainingEvent) throws -> Void) throws -> TrainingOutcome {
        let folder = RunFolder(output)
        func note(_ text: String) throws { try events(.note(text)) }
        guard case let (resolved, start, losses)? = try startingPoint(folder, note: note) else {
            return .alreadyComplete(steps: folder.newestResumable ?? 0)
        }
        var settings = resolved

        let model = try SDXLModel.open(settings.model)
        guard model.unetConfig != nil else {
            throw TrainingError.badSetting("\(settings.model) is not an SDXL-architecture model: \(model.unetConfigError ?? "no UNet found")")
        }
        if settings.baseModelSHA256 == nil, let unetFile = model.locate(.unet, "conv_in.weight")?.file.path {
            settings.baseModelSHA256 = try FileHash.sha256(path: unetFile)
        }
        let conditioning = try TrainingData.conditioning(prompt: settings.renderedPrompt, model: model, log: note)
        let (examples, scalingFactor): ([TrainingExample], Float) = try {
            let vae = try TrainingData.autoencoder(settings: settings, model: model)
            return (try TrainingData.examples(settings: settings, vae: vae, log: note), vae.scalingFactor)
        }()
        // Training hooks the adapter instead of merging it, so the UNet can load straight into its precision.
        let precision = settings.precision ?? .fp32
        let unet = try SDXLUNet(model: model, precision: precision)
        try note("precision \(precision.rawValue)" + (resume ? " (the run's own)" : ""))

        let trainer = try makeTrainer(folder, settings, start, unet, examples, conditioning, scalingFactor, note: note)
        var loop = StepLoop(folder: folder, settings: settings, start: start, trainer: trainer,
                            record: RunFolder.Record(settings: settings, losses: losses, secondsPerStep: nil, finished: false))
        if !resume {
            // Created only now, so a run that fails while loading (a bad --model) leaves no empty folder.
            try folder.create()
            try folder.writeRecord(loop.record)
        }
        return try loop.run(shouldStop: shouldStop, events: events)
    }

    /// The settings, first step and past losses: fresh, or from the run folder on resume (nil: nothing to do).
    func startingPoint(_ folder: RunFolder, note: (String) throws -> Void) throws -> (TrainingSettings, Int, [Double])? {
        var settings = self.settings
        guard resume else {
            guard !folder.holdsRun else {
                throw TrainingError.badSetting("\(output) holds another run (train.json or checkpoints); pass --resume to continue it or choose another --output")
            }
            try settings.validate()
            settings.images = try TrainingData.expand(settings.images)
            return (settings, 0, [])
        }
        guard folder.holdsRun else { throw TrainingError.badSetting("nothing to resume in \(output) (no train.json or checkpoint)") }
        let record = try folder.readRecord()
        guard let start = folder.newestResumable else {
            throw TrainingError.badSetting("\(output) has no checkpoint with optimizer state to resume from")
        }
        // The run's own settings win; only the length and the checkpoint spacing may change.
        let steps = settings.steps, every = settings.checkpointEvery
        settings = record.settings
        settings.steps = steps
        settings.checkpointEvery = every
        if start >= steps {
            try note("\(output): the run already has \(start) steps (raise --steps to continue it)")
            return nil
        }
        return (settings, start, Array(record.losses.prefix(start)))
    }

    /// A fresh adapter and optimizer, or those of the newest checkpoint; recomputation decided from the estimate.
    func makeTrainer(_ folder: RunFolder, _ settings: TrainingSettings, _ start: Int, _ unet: SDXLUNet, _ examples: [TrainingExample],
                     _ conditioning: PromptConditioning, _ scalingFactor: Float, note: (String) throws -> Void) throws -> Trainer {
        let adapter: TrainableAdapter, optimizer: AdamW
        if resume {
            adapter = try TrainableAdapter.restored(
                from: try AdapterReader.read("\(folder.checkpointPath(start))/adapter.safetensors"), method: settings.method, unet: unet)
            optimizer = try folder.readOptimizer(steps: start, settings: settings.optimizer, parameters: adapter.parameters)
            try note("resuming \(output) at step \(start) of \(settings.steps)")
        } else {
            adapter = try TrainableAdapter.initialized(
                for: unet, method: settings.method, rank: settings.rank, minRank: settings.minRank,
                rankAlpha: settings.rankAlpha, spectrum: settings.initialization, seed: settings.seed)
            optimizer = AdamW(settings: settings.optimizer, shapes: adapter.parameters.map(\.tensor.shape))
        }
        let trainer = Trainer(unet: unet, adapter: adapter, optimizer: optimizer, examples: examples,
                              conditioning: conditioning, scalingFactor: scalingFactor, seed: settings.seed)
        trainer.shouldStop = shouldStop
        let estimate = MemoryEstimate(unet: unet, adapter: adapter, settings: settings)
        let decision = estimate.recompute(recompute)
        trainer.recompute = decision.on
        try note(estimate.summary)
        try note(decision.why)
        return trainer
    }
}
