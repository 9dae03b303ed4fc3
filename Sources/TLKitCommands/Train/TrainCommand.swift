import ArgumentParser
import Foundation
import Training

/// `tlkit train`: a T-LoRA fine-tune of an SDXL UNet on one (or a few) images, the paper's recipe.
struct Train: ParsableCommand {
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

    @Option(help: "SDXL checkpoint: a single .safetensors file or a diffusers folder.")
    var model: String

    @Option(help: "A VAE replacing the checkpoint's (file or diffusers folder), e.g. sdxl-vae-fp16-fix.")
    var vae: String?

    @Option(name: .customLong("image"), help: "Training image (JPEG or PNG) or a folder of them (repeatable).")
    var images: [String] = []

    @Option(help: "The placeholder token (the V* of the paper).")
    var token: String = "sks"

    @Option(name: .customLong("class"), help: "The subject's class noun, e.g. dog.")
    var className: String?

    @Option(help: "Output folder.")
    var output: String

    @Option(help: "Prompt template; {token} and {class} are filled in.")
    var prompt: String = "a photo of {token} {class}"

    @Option(help: "tlora (ortho + timestep mask), vanilla-tlora, ortho-lora or lora.")
    var method: TrainingMethod = .tlora

    @Option(help: "Adapter rank R.")
    var rank: Int = 64

    @Option(help: "Rank kept at t = T (T-LoRA methods).")
    var minRank: Int = 32

    @Option(help: "Exponent α of the rank schedule r(t).")
    var rankAlpha: Double = 1

    @Option(name: .customLong("init"), help: "Singular values that become λ: last (the paper), principal or middle.")
    var initialization: InitSpectrum = .last

    @Option(help: "Optimizer steps.")
    var steps: Int = 800

    @Option(help: "AdamW learning rate (constant).")
    var lr: Double = 1e-4

    @Option(help: "AdamW decoupled weight decay.")
    var weightDecay: Double = 1e-4

    @Option(help: "Training resolution in pixels (the paper: 1024; 512 is much faster on a CPU).")
    var resolution: Int = 1024

    @Option(help: "Random seed (initialisation, timesteps, noise).")
    var seed: UInt64 = 0

    @Option(help: "Write a checkpoint every N steps.")
    var checkpointEvery: Int = 100

    @Flag(help: "Continue the run in --output from its newest checkpoint (--steps may be raised).")
    var resume = false

    @Option(help: "Add each checkpoint to the catalog as a version of NAME.")
    var addToCatalog: String?

    @Option(help: "Activation recomputation: auto, on or off (on trades time for memory).")
    var recompute: RecomputeMode = .auto

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

    var settings: TrainingSettings {
        TrainingSettings(
            model: model, vae: vae, images: images, token: token, className: className ?? "", prompt: prompt, method: method,
            rank: rank, minRank: minRank, rankAlpha: rankAlpha, initialization: initialization, steps: steps,
            optimizer: AdamW.Settings(learningRate: lr, weightDecay: weightDecay), resolution: resolution, seed: seed,
            checkpointEvery: checkpointEvery, precision: precision.resolved)
    }

    func run() throws {
        threads.apply()
        do {
            try TrainingSession(settings: settings, output: output, resume: resume, recompute: recompute,
                                json: json, catalogName: addToCatalog, catalog: catalog).run()
        } catch let error as TrainingError {
            throw CommandFailure("\(error)")
        }
    }
}

/// `--recompute`: whether the UNet keeps every activation for backward or recomputes blocks.
enum RecomputeMode: String, ExpressibleByArgument, CaseIterable {
    case auto, on, off
}

extension TrainingMethod: ExpressibleByArgument {}
extension InitSpectrum: ExpressibleByArgument {}
