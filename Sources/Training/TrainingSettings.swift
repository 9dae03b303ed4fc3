import Adapters
import Engine

/// Every setting of a run, as written to `train.json` and compared on `--resume`.
public struct TrainingSettings: Codable, Equatable, Sendable {
    public var model: String
    /// SHA-256 of the file holding the base model's UNet (recorded in every checkpoint).
    public var baseModelSHA256: String?
    /// A VAE replacing the checkpoint's (`--vae`; the paper used sdxl-vae-fp16-fix).
    public var vae: String?
    public var images: [String]
    public var token: String
    public var className: String
    public var prompt: String
    public var method: TrainingMethod
    public var rank: Int
    public var minRank: Int
    public var rankAlpha: Double
    public var initialization: InitSpectrum
    public var steps: Int
    public var optimizer: AdamW.Settings
    public var resolution: Int
    public var seed: UInt64
    public var checkpointEvery: Int
    /// The arithmetic of the frozen UNet (nil in runs recorded before bf16 existed: fp32).
    public var precision: Precision?

    public init(model: String, vae: String? = nil, images: [String], token: String, className: String, prompt: String,
                method: TrainingMethod = .tlora, rank: Int = 64, minRank: Int = 32, rankAlpha: Double = 1,
                initialization: InitSpectrum = .last, steps: Int = 800, optimizer: AdamW.Settings = AdamW.Settings(),
                resolution: Int = 1024, seed: UInt64 = 0, checkpointEvery: Int = 100, precision: Precision? = nil) {
        self.model = model
        self.vae = vae
        self.images = images
        self.token = token
        self.className = className
        self.prompt = prompt
        self.method = method
        self.rank = rank
        self.minRank = minRank
        self.rankAlpha = rankAlpha
        self.initialization = initialization
        self.steps = steps
        self.optimizer = optimizer
        self.resolution = resolution
        self.seed = seed
        self.checkpointEvery = checkpointEvery
        self.precision = precision
    }

    /// The prompt with `{token}` and `{class}` filled in (the official "a photo of sks dog").
    public var renderedPrompt: String {
        prompt.replacingOccurrences(of: "{token}", with: token).replacingOccurrences(of: "{class}", with: className)
    }

    /// Every setting a run can start with: the numbers (see `validateNumbers`) and at least one image.
    public func validate() throws {
        try validateNumbers()
        guard !images.isEmpty else { throw TrainingError.badSetting("no training image given (--image)") }
    }

    /// Ranks, schedule, steps, optimizer and resolution are in range (messages name the command's flags).
    public func validateNumbers() throws {
        func bad(_ why: String) -> TrainingError { .badSetting(why) }
        // Upper bounds keep the sizes computed from these flags far from Int overflow.
        guard rank >= 1 else { throw bad("--rank must be at least 1 (got \(rank))") }
        guard rank <= 65536 else { throw bad("--rank must be at most 65536 (got \(rank))") }
        guard minRank >= 0, minRank <= rank else { throw bad("--min-rank \(minRank) must be between 0 and --rank \(rank)") }
        guard rankAlpha > 0, rankAlpha.isFinite else { throw bad("--rank-alpha must be positive (got \(rankAlpha))") }
        guard steps >= 1 else { throw bad("--steps must be at least 1 (got \(steps))") }
        guard checkpointEvery >= 1 else { throw bad("--checkpoint-every must be at least 1 (got \(checkpointEvery))") }
        guard optimizer.learningRate > 0, optimizer.learningRate.isFinite else { throw bad("--lr must be positive (got \(optimizer.learningRate))") }
        guard optimizer.weightDecay >= 0 else { throw bad("--weight-decay must not be negative (got \(optimizer.weightDecay))") }
        guard resolution >= 64, resolution <= 16384, resolution % 64 == 0 else {
            throw bad("--resolution must be a multiple of 64 between 64 and 16384 (got \(resolution))")
        }
    }
}

extension TrainingSettings {
    /// The training facts recorded in every checkpoint's metadata (the `tlora.*` keys of docs/formats.md, "Metadata").
    public func metadata(steps done: Int) -> [String: String] {
        let facts: [String: String] = [
            "tlora.token": token, "tlora.class": className, "tlora.prompt": renderedPrompt,
            "tlora.steps": String(done), "tlora.seed": String(seed), "tlora.init": initialization.rawValue,
            "modelspec.title": "\(token) \(className) (\(method.rawValue), \(done) steps)",
            "modelspec.resolution": "\(resolution)x\(resolution)",
            "modelspec.trigger_phrase": "\(token) \(className)",
        ]
        return facts.merging(baseModelSHA256.map { ["tlora.base_model_sha256": $0] } ?? [:]) { a, _ in a }
    }
}
