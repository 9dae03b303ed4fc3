import Adapters
import Engine
import Foundation

/// The steps of a prepared run: checkpoints every `checkpointEvery` steps and at the end, the final
/// adapter and train.json; on a stop request, a checkpoint of the last completed step.
struct StepLoop {
    let folder: RunFolder
    let settings: TrainingSettings
    let start: Int
    let trainer: Trainer
    var record: RunFolder.Record
    var timing = StepTiming()

    init(folder: RunFolder, settings: TrainingSettings, start: Int, trainer: Trainer, record: RunFolder.Record) {
        self.folder = folder
        self.settings = settings
        self.start = start
        self.trainer = trainer
        self.record = record
    }

    mutating func run(shouldStop: () -> Bool, events: (TrainingEvent) throws -> Void) throws -> TrainingOutcome {
        var completed = start
        var profiledSeconds = 0.0   // steps after the warm-up one (TLKIT_PROFILE)
        try events(.started(step: start, total: settings.steps))
        TensorMemory.resetPeak()
        do {
            for k in start..<settings.steps {
                let began = Date()
                let loss = try trainer.step(k)
                completed = k + 1
                record.losses.append(loss)
                let seconds = Date().timeIntervalSince(began)
                timing.add(seconds)
                try events(.step(step: completed, loss: loss, seconds: seconds))
                if completed > start + 1 { profiledSeconds += seconds }
                if completed == start + 1 {
                    try events(.note("peak memory after the first step: \(MemoryEstimate.bytes(peakResidentBytes()))"))
                    if OperationProfile.isEnabled {
                        let pool = TensorMemory.peakBytes
                        try events(.note("tensor buffers at their peak in the step: \(MemoryEstimate.bytes(pool.total - pool.kept)) in use, "
                                         + "\(MemoryEstimate.bytes(pool.kept)) kept for reuse; UNet weights as held now "
                                         + MemoryEstimate.bytes(trainer.unet.frozenWeightBytes)))
                    }
                    OperationProfile.reset()   // TLKIT_PROFILE: profile the steps after the warm-up one
                }
                if shouldStop() { throw TrainingError.interrupted }
                if completed % settings.checkpointEvery == 0 || completed == settings.steps {
                    try checkpoint(completed, events: events)
                }
            }
        } catch TrainingError.interrupted {
            if !folder.checkpoints.contains(completed) { try checkpoint(completed, events: events) }
            try events(.note("interrupted: \(folder.checkpointPath(completed)) holds step \(completed); continue with --resume"))
            return .interrupted(steps: completed)
        }
        if OperationProfile.isEnabled {
            try events(.note("operation profile of steps \(start + 2)–\(completed):\n\(OperationProfile.report(total: profiledSeconds))"))
        }
        try AdapterWriter.write(trainer.adapter.snapshot(metadata: settings.metadata(steps: completed)), format: .tlora,
                                to: folder.finalAdapterPath)
        record.finished = true
        try folder.writeRecord(record)
        return .finished(steps: completed, path: folder.finalAdapterPath)
    }

    /// checkpoint-`steps` with the optimizer state, then train.json, then the event (the caller may catalog it).
    mutating func checkpoint(_ steps: Int, events: (TrainingEvent) throws -> Void) throws {
        record.secondsPerStep = timing.secondsPerStep
        let snapshot = trainer.adapter.snapshot(metadata: settings.metadata(steps: steps))
        try folder.writeCheckpoint(steps: steps, adapter: snapshot, optimizer: trainer.optimizer,
                                   parameterNames: trainer.adapter.parameters.map(\.name))
        try folder.writeRecord(record)
        try events(.checkpoint(step: steps, path: "\(folder.checkpointPath(steps))/adapter.safetensors"))
    }
}
