import Adapters
import ArgumentParser
import Foundation
import JSONOutput
import SafeTensors

struct ResizeCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "resize",
        abstract: "Lower an adapter's rank by SVD, to a rank or to a retained share of its energy.",
        discussion: """
        Each module's delta (dW) is decomposed from its factors; the kept components carry the scale, so the effect \
        is preserved up to what is dropped. The report gives the retained Frobenius energy per module and \
        overall. T-LoRA adapters are refused (an SVD mixes the components the timestep mask keeps apart): \
        bake them first with convert --at-timestep.
        """)

    static let examples: [Example] = [
        ("Lower every module to rank 8", "tlkit resize lora.safetensors --rank 8 -o lora-r8.safetensors"),
        ("Keep 99 % of the energy and store the result in the catalog", "tlkit resize lora.safetensors --energy 0.99 -o - | tlkit add - --name lora-small"),
    ]

    @Argument(help: "The adapter.") var input: String
    @Option(parsing: .unconditional, help: "The new rank.") var rank: Int?
    @Option(parsing: .unconditional, help: "Keep the smallest rank retaining this fraction of the Frobenius energy, per module.") var energy: Double?
    @Option(name: .shortAndLong, help: "Output file ('-' for standard output).") var output: String
    @Option(help: "Output format (default: the input's standard format, kohya or peft).") var to: OutputFormat?
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var catalog: CatalogOption
    @OptionGroup var nonFinite: NonFiniteOption

    func validate() throws {
        guard (rank == nil) != (energy == nil) else { throw ValidationError("give exactly one of --rank and --energy") }
        if let energy, !(energy > 0 && energy <= 1) { throw ValidationError("--energy must be in (0, 1]") }
        if let rank, rank < 1 { throw ValidationError("--rank must be at least 1") }
    }

    func run() throws {
        let adapter = try AdapterArgument(input).read(catalog: catalog, policy: nonFinite.policy)
        let (resized, results, overall) = try AdapterResize.resize(adapter, to: rank.map { .rank($0) } ?? .energy(energy!))
        let format = to ?? (adapter.format == .peft ? .peft : .kohya)
        try AdapterWriter.write(resized, format: format, to: output, options: WriteOptions(nonFinite: nonFinite.policy))
        let text: String
        if json {
            text = JSONValue.object([
                ("output", .string(output)), ("retained_energy", .double(overall)),
                ("modules", .array(results.map { .object([("module", .string($0.module)), ("rank_in", .int($0.rankIn)),
                                                         ("rank_out", .int($0.rankOut)), ("retained_energy", .double($0.retainedEnergy))]) })),
            ]).serialized()
        } else {
            let ranks = Set(results.map(\.rankOut)).sorted()
            let worst = results.min { $0.retainedEnergy < $1.retainedEnergy }
            text = "\(input) → \(output): \(results.count) modules, rank \(ranks.first!)\(ranks.count > 1 ? "–\(ranks.last!)" : ""), retained energy \(String(format: "%.6f", overall)) overall" +
                (worst.map { ", lowest \(String(format: "%.6f", $0.retainedEnergy)) in \($0.module)" } ?? "")
        }
        if json, output != "-" { Console.out(text) } else { Console.error(text) }
    }
}
