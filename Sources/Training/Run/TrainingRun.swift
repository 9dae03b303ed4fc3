import Adapters
import ArgumentParser
import Catalog
import Engine
import Foundation
import SafeTensors
import SDXL
import TextEncoders
import Training
import UNet

/// One `tlkit train` invocation: prepares (or restores) a run, runs the steps, writes checkpoints, and on
/// Ctrl-C saves the last completed step before exiting 130.
struct TrainingSession {
    var settings: TrainingSettings
    let output: String
    let resume: Bool
    let recompute: RecomputeMode
    let json: Bool
    let catalogName: String?
    let catalog: CatalogOption

    init(settings: TrainingSettings, output: String, resume: Bool, recompute: RecomputeMode, json: Bool,
         catalogName: String?, catalog: CatalogOption) {
        self.settings = settings
        self.output = output
        self.resume = resume
        self.recompute = recompute
        self.json = json
        self.catalogName = catalogName
        self.catalog = catalog
    }

    func run() throws {
        let folder = RunFolder(output)
        var settings = self.settings
        var start = 0, losses: [Double] = []
        if resume {
            guard folder.holdsRun else { throw CommandFailure("nothing to resume in \(output) (no train.json or checkpoint)") }
            let record = try folder.readRecord()
            guard let newest = folder.newestResumable else {
                throw CommandFailure("\(output) has no checkpoint with optimizer state to resume from")
            }
            start = newest
            losses = Array(record.losses.prefix(start))
            // The run's own settings win; only the length and the checkpoint spacing may change.
            let steps = settings.steps, every = settings.checkpointEvery
            settings = record.settings
            settings.steps = steps
            settings.checkpointEvery = every
            if start >= steps {
                Console.error("\(output): the run already has \(start) steps (raise --steps to continue it)")
                return
            }
        } else {
            guard !folder.holdsRun else {
                throw CommandFailure("\(output) holds another run (train.json or checkpoints); pass --resume to continue it or choose another --output")
            }
            try settings.validate()
            settings.images = try TrainingImages.expand(settings.images)
        }

        let model = try SDXLModel.open(settings.model)
        guard model.unetConfig != nil else {
            throw CommandFailure("\(settings.model) is not an SDXL-architecture model: \(model.unetConfigError ?? "no UNet found")")
        }
        if settings.baseModelSHA256 == nil, let unetFile = model.locate(.unet, "conv_in.weight")?.file.path {
            settings.baseModelSHA256 = try FileHash.sha256(path: unetFile)
        }
        let conditioning = try encodePrompt(settings.renderedPrompt, model: model)
        let (examples, scalingFactor): ([TrainingExample], Float) = try {
            let vae = try TrainingImages.autoencoder(settings: settings, model: model)
            return (try TrainingImages.examples(settings: settings, vae: vae, log: note), vae.scalingFactor)
        }()
        // Training hooks the adapter instead of merging it, so the UNet can load straight into its precision.
        let precision = settings.precision ?? .fp32
        let unet = try SDXLUNet(model: model, precision: precision)
        note("precision \(precision.rawValue)" + (resume ? " (the run's own)" : ""))

        let adapter: TrainableAdapter, optimizer: AdamW
        if resume {
            adapter = try TrainableAdapter.restored(
                from: try AdapterReader.read("\(folder.checkpointPath(start))/adapter.safetensors"), method: settings.method, unet: unet)
            optimizer = try folder.readOptimizer(steps: start, settings: settings.optimizer, parameters: adapter.parameters)
            note("resuming \(output) at step \(start) of \(settings.steps)")
        } else {
            adapter = try TrainableAdapter.initialized(
                for: unet, method: settings.method, rank: settings.rank, minRank: settings.minRank,
                rankAlpha: settings.rankAlpha, spectrum: settings.initialization, seed: settings.seed)
            optimizer = AdamW(settings: settings.optimizer, shapes: adapter.parameters.map(\.tensor.shape))
        }
        let trainer = Trainer(unet: unet, adapter: adapter, optimizer: optimizer, examples: examples,
                              conditioning: conditioning, scalingFactor: scalingFactor, seed: settings.seed)
        trainer.shouldStop = { Interruption.requested != nil }
        let estimate = MemoryEstimate(unet: unet, adapter: adapter, settings: settings)
        let decision = estimate.recompute(recompute)
        trainer.recompute = decision.on
        note(estimate.summary)
        note(decision.why)

        let progress = TrainingProgress(total: settings.steps, start: start, json: json)
        var record = RunFolder.Record(settings: settings, losses: losses, secondsPerStep: nil, finished: false)
        if !resume {
            // Created only now, so a run that fails while loading (a bad --model) leaves no empty folder.
            try folder.create()
            try folder.writeRecord(record)
        }
        Interruption.deferring = true
        defer { Interruption.deferring = false }
        var completed = start
        var profiledSeconds = 0.0   // steps after the warm-up one (TLKIT_PROFILE)
        do {
            for k in start..<settings.steps {
                let began = Date()
                let loss = try trainer.step(k)
                completed = k + 1
                record.losses.append(loss)
                let seconds = Date().timeIntervalSince(began)
                progress.step(completed, loss: loss, seconds: seconds)
                if completed > start + 1 { profiledSeconds += seconds }
                if completed == start + 1 {
                    progress.message("peak memory after the first step: \(MemoryEstimate.bytes(peakResidentBytes()))")
                    OperationProfile.reset()   // TLKIT_PROFILE: profile the steps after the warm-up one
                }
                if Interruption.requested != nil { throw TrainingError.interrupted }
                if completed % settings.checkpointEvery == 0 || completed == settings.steps {
                    record.secondsPerStep = progress.secondsPerStep
                    try checkpoint(folder, completed, trainer, &record, progress)
                }
            }
        } catch TrainingError.interrupted {
            progress.finishLine()
            record.secondsPerStep = progress.secondsPerStep
            if !folder.checkpoints.contains(completed) { try checkpoint(folder, completed, trainer, &record, progress) }
            note("interrupted: \(folder.checkpointPath(completed)) holds step \(completed); continue with --resume")
            throw ExitCode(Interruption.requested ?? 130)
        }
        progress.finishLine()
        if OperationProfile.isEnabled { note("operation profile of steps \(start + 2)–\(completed):\n\(OperationProfile.report(total: profiledSeconds))") }
        try AdapterWriter.write(adapter.snapshot(metadata: settings.metadata(steps: completed)), format: .tlora, to: folder.finalAdapterPath)
        record.finished = true
        try folder.writeRecord(record)
        progress.done(path: folder.finalAdapterPath, steps: completed)
    }

    func checkpoint(_ folder: RunFolder, _ steps: Int, _ trainer: Trainer, _ record: inout RunFolder.Record, _ progress: TrainingProgress) throws {
        let snapshot = trainer.adapter.snapshot(metadata: settings.metadata(steps: steps))
        try folder.writeCheckpoint(steps: steps, adapter: snapshot, optimizer: trainer.optimizer,
                                   parameterNames: trainer.adapter.parameters.map(\.name))
        try folder.writeRecord(record)
        let path = "\(folder.checkpointPath(steps))/adapter.safetensors"
        var reference: String?
        if let catalogName {
            let file = try SafeTensorsFile.open(path)
            let store = try catalog.open(create: true)
            switch try store.add(file: file, originalPath: path, name: catalogName, tags: [], note: nil,
                                 facts: catalogFacts(for: file, path: path), level: nil) {
            case let .added(ref, _), let .alreadyStored(ref): reference = "\(ref)"
            }
        }
        progress.checkpoint(steps, path: path, catalogReference: reference)
    }

    func encodePrompt(_ prompt: String, model: SDXLModel) throws -> PromptConditioning {
        let encoders = try SDXLTextEncoders(model: model)
        let (context, pooled) = try encoders.conditioning(prompt)
        note("prompt \"\(prompt)\" encoded once (\(context.shape[1]) tokens × \(context.shape[2]))")
        return PromptConditioning(context: context, pooled: pooled)
    }

    func note(_ text: String) {
        Console.error(text)
    }
}
