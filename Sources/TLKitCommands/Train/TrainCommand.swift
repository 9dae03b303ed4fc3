import ArgumentParser
import Catalog
import Foundation
import SafeTensors
import Training

/// `tlkit train`: a T-LoRA fine-tune of an SDXL UNet on one (or a few) images, the paper's recipe.
struct TrainCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune an SDXL UNet with T-LoRA on one image (the paper's recipe), on the CPU.",
        discussion: """
        Writes OUTPUT/checkpoint-N/adapter.safetensors (the adapter after N steps; the official trainer's checkpoint-N \
        holds N + 1) every --checkpoint-every steps and OUTPUT/adapter.safetensors \
        at the end (tlkit T-LoRA files with the schedule and the training facts in metadata), optimizer state beside \
        the newest checkpoint, and OUTPUT/train.json with every setting and the loss of every step. Ctrl-C (or SIGTERM) \
        abandons the step in flight, saves the last completed step as a checkpoint and exits 130 (143); --resume \
        continues a run exactly (bitwise equal to an uninterrupted run). Images are center-cropped to a square and \
        resized with Lanczos; EXIF orientation is honoured (the official trainer ignores it).
        """)

    static let examples: [Example] = [
        ("Fine-tune on one photo at 512 px (the paper: 1024 px, 800 steps, rank 64)", "tlkit train --model sd_xl_base_1.0.safetensors --image dog.jpg --class dog -o runs/sks-dog --resolution 512"),
        ("Continue an interrupted run and make it longer", "tlkit train --model sd_xl_base_1.0.safetensors -o runs/sks-dog --resume --steps 1000"),
        ("Train and keep every checkpoint in the catalog", "tlkit train --model sdxl/ --image photos/ --class mug -o runs/mug --add-to-catalog sks-mug"),
    ]

    @Option(help: "SDXL checkpoint: a single .safetensors file or a diffusers folder.")
    var model: String

    @Option(help: "A VAE replacing the checkpoint's (file or diffusers folder), e.g. sdxl-vae-fp16-fix.")
    var vae: String?

    @Option(name: .customLong("image"), help: "Training image (JPEG or PNG) or a folder of them (repeatable).")
    var images: [String] = []

    @Option(help: "The placeholder token (the V* of the paper; default: \(TrainCommand.defaults.token)).")
    var token: String?

    @Option(name: .customLong("class"), help: "The subject's class noun, e.g. dog.")
    var className: String?

    @Option(name: .shortAndLong, help: "Output folder.")
    var output: String

    @Option(help: "Prompt template; {token} and {class} are filled in (default: \(TrainCommand.defaults.prompt)).")
    var prompt: String?

    @Option(help: "tlora (ortho + timestep mask), vanilla-tlora, ortho-lora or lora (default: \(TrainCommand.defaults.method.rawValue)).")
    var method: TrainingMethod?

    @Option(parsing: .unconditional, help: "Adapter rank R (default: \(TrainCommand.defaults.rank)).")
    var rank: Int?

    @Option(parsing: .unconditional, help: "Rank kept at t = T, T-LoRA methods (default: \(TrainCommand.defaults.minRank)).")
    var minRank: Int?

    @Option(parsing: .unconditional, help: "Exponent alpha of the rank schedule r(t) (default: \(TrainCommand.defaults.rankAlpha)).")
    var rankAlpha: Double?

    @Option(name: .customLong("init"), help: "Singular values that become lambda: last (the paper), principal or middle (default: \(TrainCommand.defaults.initialization.rawValue)).")
    var initialization: InitSpectrum?

    // Optional, so that the man page can state the default too (its generator shows none).
    @Option(name: .customLong("steps"), parsing: .unconditional, help: ArgumentHelp("Optimizer steps (default: \(TrainCommand.defaults.steps)).", valueName: "steps"))
    var stepsGiven: Int?
    var steps: Int { stepsGiven ?? TrainCommand.defaults.steps }

    @Option(parsing: .unconditional, help: "AdamW learning rate, constant (default: \(TrainCommand.defaults.optimizer.learningRate)).")
    var lr: Double?

    @Option(parsing: .unconditional, help: "AdamW decoupled weight decay (default: \(TrainCommand.defaults.optimizer.weightDecay)).")
    var weightDecay: Double?

    @Option(parsing: .unconditional, help: "Training resolution in pixels (default: \(TrainCommand.defaults.resolution), the paper's; 512 is much faster on a CPU).")
    var resolution: Int?

    @Option(parsing: .unconditional, help: "Random seed: initialisation, timesteps, noise (default: \(TrainCommand.defaults.seed)).")
    var seed: UInt64?

    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional,
            help: ArgumentHelp("Write a checkpoint every N steps (default: \(TrainCommand.defaults.checkpointEvery)).", valueName: "checkpoint-every"))
    var checkpointEveryGiven: Int?
    var checkpointEvery: Int { checkpointEveryGiven ?? TrainCommand.defaults.checkpointEvery }

    @Flag(help: "Continue the run in --output from its newest checkpoint with its own settings (--steps may be raised; other settings must be left out or equal the run's).")
    var resume = false

    @Option(help: "Add each checkpoint to the catalog as a version of NAME.")
    var addToCatalog: String?

    @Option(help: "Activation recomputation: auto (the default), on or off (on trades time for memory).")
    var recompute: RecomputeMode?

    @Flag(help: "JSON lines of progress on standard output.")
    var json = false

    @OptionGroup var catalog: CatalogOption
    @OptionGroup var threads: ThreadsOption
    @OptionGroup var precision: PrecisionOption

    func validate() throws {
        if images.isEmpty && !resume { throw ValidationError("give at least one --image") }
        if className == nil && !resume { throw ValidationError("give the subject's class noun with --class (e.g. --class dog)") }
        // The run's own checks, reported as usage errors (exit 2).
        do { try settings.validateNumbers() } catch { throw ValidationError("\(error)") }
    }

    /// The settings a new run starts with when a flag is left out.
    static let defaults = TrainingSettings(model: "", images: [], token: "sks", className: "", prompt: "a photo of {token} {class}")

    var settings: TrainingSettings {
        let d = TrainCommand.defaults
        return TrainingSettings(
            model: model, vae: vae, images: images, token: token ?? d.token, className: className ?? "", prompt: prompt ?? d.prompt,
            method: method ?? d.method, rank: rank ?? d.rank, minRank: minRank ?? d.minRank, rankAlpha: rankAlpha ?? d.rankAlpha,
            initialization: initialization ?? d.initialization, steps: steps,
            optimizer: AdamW.Settings(learningRate: lr ?? d.optimizer.learningRate, weightDecay: weightDecay ?? d.optimizer.weightDecay),
            resolution: resolution ?? d.resolution, seed: seed ?? d.seed, checkpointEvery: checkpointEvery,
            precision: precision.resolved)
    }

    func run() throws {
        threads.apply()
        if resume, let stored = try? RunFolder(output).readRecord().settings {
            let conflicts = try resumeConflicts(with: stored)
            if !conflicts.isEmpty {
                throw CommandFailure("--resume continues \(output) with its own settings; these differ from the run's: "
                                     + conflicts.joined(separator: "; ") + " (leave them out, or start a new run in another --output)", exitCode: 2)
            }
        }
        try train()
    }

    /// Runs the recipe, printing its events and adding each checkpoint to the catalog when asked.
    func train() throws {
        let progress = TrainingProgress(total: steps, json: json)
        let run = TrainingRun(settings: settings, output: output, resume: resume, recompute: recompute ?? .auto,
                              shouldStop: { Interruption.requested != nil })
        defer { Interruption.deferring = false }
        let outcome = try run.run { event in
            switch event {
            case let .note(text): progress.message(text)
            case .started: Interruption.deferring = true
            case let .step(step, loss, seconds): progress.step(step, loss: loss, seconds: seconds)
            case let .checkpoint(step, path): progress.checkpoint(step, path: path, catalogReference: try catalogReference(for: path))
            }
        }
        switch outcome {
        case .alreadyComplete: return
        case .interrupted: throw ExitCode(Interruption.requested ?? 130)
        case let .finished(steps, path):
            progress.finishLine()
            progress.done(path: path, steps: steps)
        }
    }

    /// The checkpoint at `path` as a version of --add-to-catalog's name; its reference, or nil without the flag.
    func catalogReference(for path: String) throws -> String? {
        guard let addToCatalog else { return nil }
        let file = try SafeTensorsFile.open(path)
        return try catalog.adding { store in
            switch try store.add(file: file, originalPath: path, name: addToCatalog, tags: [], note: nil,
                                 facts: catalogFacts(for: file, path: path), level: nil, digests: nil, beforeCommit: {}) {
            case let .added(ref, _), let .alreadyStored(ref): return "\(ref)"
            }
        }
    }
}

extension TrainCommand {
    /// Each setting given on the command line that differs from the run's, as "--rank 8 (the run has 4)".
    /// Only the length (--steps) and the checkpoint spacing of a run may change when it is resumed.
    func resumeConflicts(with run: TrainingSettings) throws -> [String] {
        var found: [String] = []
        func check<T: Equatable>(_ flag: String, _ given: T?, _ stored: T, _ show: (T) -> String = { "\($0)" }) {
            if let given, given != stored { found.append("\(flag) \(show(given)) (the run has \(show(stored)))") }
        }
        check("--method", method, run.method) { $0.rawValue }
        check("--rank", rank, run.rank)
        check("--min-rank", minRank, run.minRank)
        check("--rank-alpha", rankAlpha, run.rankAlpha)
        check("--init", initialization, run.initialization) { $0.rawValue }
        check("--lr", lr, run.optimizer.learningRate)
        check("--weight-decay", weightDecay, run.optimizer.weightDecay)
        check("--resolution", resolution, run.resolution)
        check("--seed", seed, run.seed)
        check("--token", token, run.token)
        check("--class", className, run.className)
        check("--prompt", prompt, run.prompt)
        check("--vae", vae, run.vae ?? "none")
        check("--precision", precision.precision == nil ? nil : precision.resolved, run.precision ?? .fp32) { $0.rawValue }
        if !images.isEmpty {
            let absolute = { (paths: [String]) in paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path } }
            check("--image", absolute(try TrainingData.expand(images)), absolute(run.images)) { $0.joined(separator: ", ") }
        }
        return found
    }
}

extension RecomputeMode: ExpressibleByArgument {}
extension TrainingMethod: ExpressibleByArgument {}
extension InitSpectrum: ExpressibleByArgument {}
