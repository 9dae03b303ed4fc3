import Adapters
import ArgumentParser
import Engine
import Foundation
import SDXL
import Sampling
import VAE

/// `tlkit sample`: parses, reads the adapters and the noise, prints the run's events, writes latents and PNGs.
struct SampleCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate SDXL samples with adapters applied per timestep, as diffusers' SDXL pipeline does.",
        discussion: """
        Euler discrete sampling with the model's scheduler settings (SDXL: leading spacing, steps offset 1, \
        scaled-linear betas) and classifier-free guidance; time ids [h, w, 0, 0, h, w]. Without --negative the \
        negative embeddings are zeros (SDXL's force_zeros_for_empty_prompt); --negative "" is encoded. \
        A T-LoRA is applied at every step with the rank mask r(t) of that step's timestep (both guidance \
        halves); a standard LoRA at every step, merged once into the weights in memory (the checkpoint is not \
        changed), unless it carries valid folded tlora.* schedule metadata: then it is masked like a T-LoRA. \
        Text-encoder modules of an adapter are merged into the text encoders (unused with --embeddings). \
        --seed S draws the initial noise as torch.randn with torch.Generator("cpu").manual_seed(S), so a seed \
        gives diffusers' noise for a CPU generator; without --seed a random seed is chosen and reported. \
        --latents FILE takes a tensor 'latents' [N, 4, h/8, w/8] exactly as diffusers' latents= argument; \
        --embeddings FILE takes prompt_embeds, pooled_prompt_embeds, negative_prompt_embeds and \
        negative_pooled_prompt_embeds as diffusers names them. --output-latents writes the final latents as \
        diffusers returns them with output_type="latent"; -o decodes them with the model's VAE (or --vae) into \
        PNGs carrying an A1111-style parameters text chunk. Progress goes to stderr on a terminal; --json \
        prints one JSON object per line on stdout.
        """)

    static let examples: [Example] = [
        ("Four images with a trained T-LoRA, masked per step", "tlkit sample --model sd_xl_base_1.0.safetensors --prompt 'a photo of sks dog' --adapter runs/sks-dog --num 4 -o dog-{i}.png"),
        ("Two adapters from the catalog, the second at weight 0.6, reproducible noise", "tlkit sample --model sdxl/ --prompt 'sks dog, watercolor' --adapter sks-dog --adapter watercolor@2:0.6 --seed 7 -o dog.png"),
    ]

    @Option(help: "The SDXL checkpoint: a diffusers folder or a single .safetensors file.")
    var model: String

    @Option(help: "The prompt (or give --embeddings).")
    var prompt: String?

    @Option(help: "The negative prompt (default: none, which gives zero negative embeddings).")
    var negative: String?

    @Option(name: .customLong("adapter"), help: ArgumentHelp("An adapter: a path, adapter folder or catalog reference, with an optional weight that multiplies its delta (default 1). Repeat for several.", valueName: AdapterArgument.syntax))
    var adapters: [String] = []

    // Optional, so that the man page can state the default too (its generator shows none).
    @Option(name: .customLong("steps"), parsing: .unconditional, help: ArgumentHelp("Denoising steps (default: 25).", valueName: "steps"))
    var stepsGiven: Int?
    var steps: Int { stepsGiven ?? 25 }

    @Option(name: .customLong("guidance"), parsing: .unconditional, help: ArgumentHelp("Classifier-free guidance scale (default: 5).", valueName: "guidance"))
    var guidanceGiven: Double?
    var guidance: Double { guidanceGiven ?? 5 }

    @Option(parsing: .unconditional, help: "Image width in pixels, a multiple of 8 (default 1024, or the --latents width times 8).")
    var width: Int?

    @Option(parsing: .unconditional, help: "Image height in pixels, a multiple of 8 (default 1024, or the --latents height times 8).")
    var height: Int?

    @Option(parsing: .unconditional, help: "Seed of the initial noise (torch's CPU generator).")
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Number of images (default 1, or the --latents batch).")
    var num: Int?

    @Option(help: "Initial noise: a safetensors file with a tensor 'latents' [N, 4, h/8, w/8].")
    var latents: String?

    @Option(help: "Prompt embeddings: a safetensors file with diffusers' prompt_embeds, pooled_prompt_embeds and the negative pair.")
    var embeddings: String?

    @Option(help: "Write the final latents [N, 4, h/8, w/8] (tensor 'latents') to this safetensors file.")
    var outputLatents: String?

    @Option(name: .shortAndLong, help: "PNG output; a pattern with {i} for several images.")
    var output: String?

    @Option(help: "A VAE replacing the checkpoint's for -o (file or diffusers folder), e.g. sdxl-vae-fp16-fix.")
    var vae: String?

    @Flag(help: "Fail when an adapter module does not fit its layer, instead of skipping it.")
    var strict = false

    @Flag(help: "Progress and the report as JSON lines on stdout.")
    var json = false

    @OptionGroup var schedule: ScheduleOptions

    @OptionGroup var threads: ThreadsOption
    @OptionGroup var precision: PrecisionOption

    @OptionGroup var catalog: CatalogOption
    @OptionGroup var nonFinite: NonFiniteOption

    func validate() throws {
        if (prompt == nil) == (embeddings == nil) { throw ValidationError("give either --prompt or --embeddings") }
        if embeddings != nil, negative != nil { throw ValidationError("--negative does not apply to --embeddings (the file holds the negative embeddings)") }
        if latents != nil, seed != nil { throw ValidationError("--seed does not apply to --latents (the file is the initial noise)") }
        if output == nil, outputLatents == nil { throw ValidationError("give -o OUT.png and/or --output-latents FILE") }
        if vae != nil, output == nil { throw ValidationError("--vae applies to -o (the images); latents need no VAE") }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        for argument in adapters { _ = try AdapterArgument(argument) }
        // Upper bounds keep the sizes computed from these flags far from Int overflow.
        if let num, !(1...4096).contains(num) { throw ValidationError("--num must be between 1 and 4096") }
        for (name, value) in [("--width", width), ("--height", height)] {
            if let value, value < 8 || value > 16384 || value % 8 != 0 {
                throw ValidationError("\(name) must be a multiple of 8 between 8 and 16384 (got \(value))")
            }
        }
        if !NonFinitePolicy.isUsableWeight(guidance) { throw ValidationError("--guidance must be a finite number") }
        if let output, (num ?? 1) > 1, !output.contains("{i}") {
            throw ValidationError("-o needs a pattern with {i} for \(num!) images (e.g. out-{i}.png)")
        }
    }

    func run() throws {
        threads.apply()
        let progress = SampleProgress(json: json)
        let modelFile = try SDXLModel.open(model)
        // Loaded first, so a missing or bad VAE fails before the long part.
        let chosen = precision.resolved
        let decoder = output == nil ? nil
            : try vae.map { try AutoencoderKL(path: $0, precision: chosen) } ?? AutoencoderKL(model: modelFile, precision: chosen)
        // Read and checked before the UNet loads, so an adapter for another base fails in seconds.
        let policy = nonFinite.policy
        let entries = try adapters.map { argument -> AdapterStack.Entry in
            let parsed = try AdapterArgument(argument)
            let adapter = try parsed.read(flags: schedule.flags, catalog: catalog, policy: policy)
            try BaseRequirement.requireSDXL(adapter, for: "sampling with an SDXL model")  // a usage error: exit 2
            return AdapterStack.Entry(adapter: adapter, scale: Float(parsed.weight ?? 1), label: parsed.label)
        }
        // Adapters may be merged into the Float32 weights before the switch; without any, load straight into it.
        // Released once the latents are final, so the UNet and the VAE decode never hold memory at once.
        var sampling: SamplingRun? = try SamplingRun(model: modelFile, loadingIn: adapters.isEmpty ? chosen : .fp32)
        TensorMemory.trim()  // loading freed each block's Float32 weights once rounded: hand those pages back
        let (noise, usedSeed) = try initialNoise(channels: sampling!.inChannels, progress: progress)
        let (h, w) = (noise.shape[2] * 8, noise.shape[3] * 8)
        let multiple = sampling!.sizeMultiple
        guard h % multiple == 0, w % multiple == 0 else {
            throw CommandFailure("\(w)×\(h) px: this model needs width and height in multiples of \(multiple) px", exitCode: latents == nil ? 2 : 1)
        }
        let source: SamplingRun.Prompt = embeddings.map { .embeddings(file: $0) } ?? .text(prompt ?? "", negative: negative)
        let final = try sampling!.run(noise: noise, prompt: source, adapters: entries, strict: strict, scheduler: try schedulerConfig(),
                                     steps: steps, guidance: Float(guidance), precision: precision.resolved) { event in
            switch event {
            case let .adapter(report): progress.adapter(report)
            case let .precision(resolved):
                progress.note(precision.summary, json: .object([("event", .string("precision")), ("precision", .string(resolved.rawValue))]))
            case let .step(p): progress.step(p)
            case let .note(text): Console.error(text)
            }
        }
        sampling = nil
        TensorMemory.trim()  // the UNet's weights and activations: hand their pages back before the decode
        try policy.admit(result: UnsafeBufferPointer(start: final.data, count: final.count), what: "the sampled latents")
        if let outputLatents { try LatentsFile.write(final, to: outputLatents) }
        if let output {
            let parameters = SampleImages.parameters(prompt: prompt, negative: negative, steps: steps, guidance: guidance,
                                                     seed: usedSeed, width: w, height: h, model: model, adapters: entries)
            let images = try SamplingRun.decode(final, vae: decoder!)
            try policy.admit(result: UnsafeBufferPointer(start: images.data, count: images.count), what: "the decoded image")
            try SampleImages.write(images: images, pattern: output, parameters: parameters)
        }
        progress.done(outputLatents: outputLatents, images: output, count: final.shape[0])
    }

    /// The initial noise [N, C, h/8, w/8]: --latents, or torch-compatible normals of the seed.
    func initialNoise(channels: Int, progress: SampleProgress) throws -> (noise: Tensor<Float>, seed: UInt64?) {
        if let latents {
            let noise = try LatentsFile.read(latents)
            if noise.shape[1] != channels { throw CommandFailure("\(latents): latents have \(noise.shape[1]) channels, the UNet takes \(channels)") }
            if let num, num != noise.shape[0] { throw CommandFailure("\(latents): \(noise.shape[0]) images of initial latents, --num is \(num)") }
            if let width, width != noise.shape[3] * 8 { throw CommandFailure("\(latents): latents are \(noise.shape[3] * 8) px wide, --width is \(width)") }
            if let height, height != noise.shape[2] * 8 { throw CommandFailure("\(latents): latents are \(noise.shape[2] * 8) px high, --height is \(height)") }
            return (noise, nil)
        }
        let seed = self.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        if self.seed == nil { progress.note("seed \(seed)", json: .object([("event", .string("seed")), ("seed", .int(Int(seed)))])) }
        let shape = [num ?? 1, channels, (height ?? 1024) / 8, (width ?? 1024) / 8]
        return (try SamplingRun.noise(seed: seed, shape: shape), seed)
    }

    /// The model's scheduler_config.json when it has one (diffusers folder), else SDXL's settings.
    func schedulerConfig() throws -> SchedulerConfig {
        let path = (model as NSString).appendingPathComponent("scheduler/scheduler_config.json")
        return FileManager.default.fileExists(atPath: path) ? try SchedulerConfig(contentsOf: path) : .sdxl
    }
}
