import Adapters
import ArgumentParser
import Foundation
import JSONOutput
import SafeTensors
import SDXL

struct ExtractCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract a LoRA from the weight difference of two SDXL checkpoints.",
        discussion: """
        The checkpoints may be in any layout and dtype (single file, diffusers UNet file or pipeline folder). \
        Each adapted module's difference is decomposed by SVD (Float64) and truncated to --rank or to the \
        smallest rank retaining --energy of it; unchanged modules are left out. Written as a kohya LoRA \
        unless --to says otherwise.
        """)

    static let examples: [Example] = [
        ("A rank-32 LoRA from a fine-tuned checkpoint", "tlkit extract sd_xl_base_1.0.safetensors finetuned.safetensors --rank 32 -o extracted.safetensors"),
        ("Every module, 90 % of the energy, inspected on the fly", "tlkit extract base.safetensors tuned.safetensors --energy 0.9 --modules all -o - | tlkit inspect -"),
    ]

    @Argument(help: "The original checkpoint.") var base: String
    @Argument(help: "The fine-tuned checkpoint.") var tuned: String
    @Option(parsing: .unconditional, help: "Rank of every extracted module.") var rank: Int?
    @Option(parsing: .unconditional, help: "Smallest rank retaining this fraction of each difference's energy.") var energy: Double?
    @Option(help: "attention (to_q, to_k, to_v, to_out.0 of every attention) or all (also feed-forward, projections, text encoders); default: attention.")
    var modules: Selection?
    @Option(name: .shortAndLong, help: "Output file ('-' for standard output).") var output: String
    @Option(help: "Output format (default: kohya).") var to: OutputFormat?
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var nonFinite: NonFiniteOption

    enum Selection: String, ExpressibleByArgument { case attention, all }

    func validate() throws {
        guard (rank == nil) != (energy == nil) else { throw ValidationError("give exactly one of --rank and --energy") }
        if let energy, !(energy > 0 && energy <= 1) { throw ValidationError("--energy must be in (0, 1]") }
        if let rank, rank < 1 { throw ValidationError("--rank must be at least 1") }
    }

    func run() throws {
        let baseModel = try SDXLModel.open(base), tunedModel = try SDXLModel.open(tuned)
        let (adapter, results, unchanged) = try AdapterExtract.extract(
            base: baseModel, tuned: tunedModel, target: rank.map { .rank($0) } ?? .energy(energy!),
            modules: modules == .all ? .all : .attention, policy: nonFinite.policy)
        let (converted, _) = try Converter.convert(adapter, ConvertRequest(to: to ?? .kohya))
        try AdapterWriter.write(converted, format: to ?? .kohya, to: output, options: WriteOptions(nonFinite: nonFinite.policy))
        let energyKept = results.map(\.retainedEnergy)
        let text = json
            ? JSONValue.object([("output", .string(output)), ("modules", .array(results.map {
                .object([("module", .string($0.module)), ("rank", .int($0.rank)), ("retained_energy", .double($0.retainedEnergy))])
            })), ("unchanged", .int(unchanged.count))]).serialized()
            : "extracted \(results.count) modules → \(output); \(unchanged.count) unchanged; retained energy min \(String(format: "%.4f", energyKept.min() ?? 1))"
        if json, output != "-" { Console.out(text) } else { Console.error(text) }
    }
}
