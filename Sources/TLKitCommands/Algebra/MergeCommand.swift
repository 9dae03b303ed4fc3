import Adapters
import ArgumentParser
import Foundation
import JSONOutput
import SafeTensors

struct MergeCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge adapters (dW = w1*dW1 + w2*dW2 + ...), or bake them into a checkpoint with --into.",
        discussion: """
        concat (default) is exact: the factors are concatenated, ranks add up, and T-LoRA inputs with one \
        schedule keep it (components of equal mask index grouped). svd compresses the sum to --rank and \
        reports the error. Unlike kohya's default merge there are no cross terms: weights scale each \
        adapter's delta linearly. --into BASE writes BASE with the adapters added to its weights, streaming; \
        untouched tensors are copied byte for byte; a T-LoRA is baked as it acts at --at-timestep (default 0). \
        DoRA adapters are read only with --into: each DoRA module replaces the weight it finds (the base plus \
        the adapters listed before it) by m / |W + s*BA| * (W + s*BA), blended by its weight.
        """)

    static let examples: [Example] = [
        ("Two LoRAs in one file, the style at weight 0.7", "tlkit merge style.safetensors:0.7 sks-dog:1 -o both.safetensors"),
        ("Bake an adapter into a checkpoint", "tlkit merge sks-dog --into sd_xl_base_1.0.safetensors -o sdxl-dog.safetensors"),
    ]

    @Argument(help: ArgumentHelp("Adapters, each a path, adapter folder, '-' or catalog reference, with an optional weight that multiplies its delta (default 1).", valueName: AdapterArgument.syntax))
    var adapters: [String]

    @Option(help: "concat (exact; the default) or svd (compressed to --rank).")
    var method: MergeMethod?

    @Option(parsing: .unconditional, help: "Rank of an svd merge.")
    var rank: Int?

    @Option(parsing: .unconditional, help: "Bake T-LoRA inputs as they act at this DDPM timestep first.")
    var atTimestep: Double?

    @Option(help: "A checkpoint file to bake the adapters into (single-file or diffusers UNet).")
    var into: String?

    @Option(name: .shortAndLong, help: "Output file ('-' for standard output).")
    var output: String

    @Option(help: "Output format of an adapter merge (default: tlora for T-LoRA inputs, else kohya).")
    var to: OutputFormat?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var catalog: CatalogOption
    @OptionGroup var nonFinite: NonFiniteOption

    enum MergeMethod: String, ExpressibleByArgument { case concat, svd }

    func validate() throws {
        if method == .svd, rank == nil { throw ValidationError("--method svd needs --rank") }
        if let rank, rank < 1 { throw ValidationError("--rank must be at least 1") }
        if let t = atTimestep, !(0...1000).contains(t) { throw ValidationError("--at-timestep must be between 0 and 1000") }
        if into != nil, to != nil { throw ValidationError("--to does not apply to --into (the output is a checkpoint)") }
        for argument in adapters { _ = try AdapterArgument(argument) }
    }

    func run() throws {
        let arguments = try adapters.map(AdapterArgument.init)
        let policy = nonFinite.policy
        let inputs = try arguments.map { arg in
            AdapterMerge.Input(adapter: try arg.read(catalog: catalog, policy: policy, acceptDoRA: into != nil), weight: arg.weight ?? 1, label: arg.label)
        }
        if let into {
            for input in inputs { try BaseRequirement.requireSDXL(input.adapter, for: "merge --into (an SDXL checkpoint)") }
            let t = atTimestep ?? 0
            if inputs.contains(where: { $0.adapter.schedule != nil }) {
                Console.error("warning: T-LoRA baked as it acts at t = \(Converter.number(t)); the timestep schedule is lost in the checkpoint")
            }
            let report = try CheckpointBake.bake(inputs, into: into, output: output, atTimestep: t, policy: policy)
            let text = "baked \(counted(report.applied.count, "module")) into \(into) → \(output); \(counted(report.untouchedTensors, "tensor")) copied unchanged; \(counted(report.skipped.count, "module")) skipped"
            emit(json ? JSONValue.object([("output", .string(output)), ("applied", .int(report.applied.count)),
                                          ("untouched_tensors", .int(report.untouchedTensors)),
                                          ("skipped", .array(report.skipped.map { .object([("module", .string($0.0)), ("reason", .string($0.1))]) }))]).serialized() : text)
            return
        }
        let result = try AdapterMerge.merge(inputs, method: method == .svd ? .svd : .concat, rank: rank, atTimestep: atTimestep)
        let format = to ?? (result.adapter.schedule != nil ? .tlora : .kohya)
        let (converted, _) = try Converter.convert(result.adapter, ConvertRequest(to: format))
        try AdapterWriter.write(converted, format: format, to: output, options: WriteOptions(nonFinite: policy))
        var text = "merged \(counted(inputs.count, "adapter")) (\(counted(converted.modules.count, "module"))) → \(output) (\(format.rawValue))"
        if let e = result.overallError { text += ", svd relative error \(String(format: "%.3g", e))" }
        emit(json ? JSONValue.object([
            ("output", .string(output)), ("format", .string(format.rawValue)), ("modules", .int(converted.modules.count)),
            ("overall_relative_error", result.overallError.map { .double($0) } ?? .null),
            ("module_errors", .array(zip(converted.modules, result.errors ?? []).map { .object([("module", .string($0.name)), ("relative_error", .double($1))]) })),
        ]).serialized() : text)
    }

    func emit(_ text: String) {
        if json, output != "-" { Console.out(text) } else { Console.error(text) }
    }
}
