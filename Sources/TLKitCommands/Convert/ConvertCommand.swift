import Adapters
import ArgumentParser
import Foundation
import SafeTensors
import SDXL

struct ConvertCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert an adapter between kohya, PEFT/diffusers, tlkit T-LoRA and the official T-LoRA layout.",
        discussion: """
        Lossless unless a lossy option is given. A T-LoRA written as a standard LoRA (--to kohya|peft) is folded \
        exactly: each ortho module becomes a rank-2R LoRA whose components 2i, 2i+1 belong to mask index i, and \
        the timestep schedule goes into tlora.* metadata, so T-LoRA-aware loaders mask it per step while any \
        other loader gets the full-rank (t = 0) adapter. --at-timestep T bakes the adapter as it acts at DDPM \
        timestep T; --rank N compresses each module by SVD and reports the relative error. A standard LoRA \
        becomes a T-LoRA (--to tlora --min-rank M) with its components ordered by singular value. A DoRA \
        adapter needs --base CHECKPOINT and --rank N: each DoRA module's change W' - W is approximated by a \
        rank-N LoRA and its relative error reported. A LyCORIS T-LoRA needs --base CHECKPOINT too (LyCORIS \
        stores no frozen part and recomputes it from the base weight); --to lycoris-tlora --base CHECKPOINT \
        writes one back from a T-LoRA whose frozen part is that checkpoint's. \
        The report goes to stderr (--json: stdout, or stderr with -o -).
        """)

    static let examples: [Example] = [
        ("A trained T-LoRA as a kohya LoRA any SDXL tool loads", "tlkit convert runs/sks-dog --to kohya -o sks-dog.safetensors"),
        ("A standard LoRA as a T-LoRA with min rank 4", "tlkit convert lora.safetensors --to tlora --min-rank 4 -o lora.tlora.safetensors"),
        ("From the catalog to PEFT, in a pipeline", "tlkit get sks-dog -o - | tlkit convert - --to peft -o sks-dog.peft.safetensors"),
    ]

    @Argument(help: "The adapter: a file, an adapter folder, or '-' for standard input.")
    var input: String

    @Option(help: "Output format: kohya, peft, tlora (the tlkit T-LoRA file), tlora-official or lycoris-tlora.")
    var to: OutputFormat

    @Option(name: .shortAndLong, help: "Output file ('-' for standard output); for tlora-official a folder gets checkpoint-N/ and logs/hparams.yml. Default: beside the input, named after the format.")
    var output: String?

    @Option(parsing: .unconditional, help: "Bake the adapter as it acts at this DDPM timestep (0 to 1000, decimals allowed).")
    var atTimestep: Double?

    @Option(parsing: .unconditional, help: "Compress every module to this rank by SVD (lossy; the error is reported).")
    var rank: Int?

    @Option(help: "An SDXL checkpoint: the weights a DoRA or IA3 adapter rescales (with --rank, each such module's change is approximated by a LoRA of that rank, the error reported), or those a LyCORIS T-LoRA's frozen part is recomputed from (reading one, or writing --to lycoris-tlora).")
    var base: String?

    @OptionGroup var schedule: ScheduleOptions

    @Option(help: "Output dtype (f32, f16, bf16); default: the input's.")
    var dtype: OutputDType?

    @Option(help: "modelspec.title of the output.")
    var title: String?

    @Option(help: "modelspec.trigger_phrase of the output.")
    var trigger: String?

    @Flag(help: "Drop the modules the output format cannot hold (and tensors that are not understood), listing them in the report, instead of failing.")
    var skipUnsupported = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var catalog: CatalogOption
    @OptionGroup var nonFinite: NonFiniteOption

    func validate() throws {
        if let r = rank, r < 1 { throw ValidationError("--rank must be at least 1") }
        if let t = atTimestep, !(0...1000).contains(t) { throw ValidationError("--at-timestep must be between 0 and 1000") }
        // There is no file to name the output after.
        if input == "-", output == nil { throw ValidationError("give -o FILE (or -o - for standard output) when the input is '-'") }
    }

    func run() throws {
        // A byte-for-byte copy computes nothing; everything else is held to the non-finite policy.
        let read = try AdapterArgument(input).read(flags: schedule.flags, catalog: catalog, policy: nil, acceptDoRA: base != nil)
        let destination = try output ?? defaultOutput()
        // LoHa/LoKr/Tucker modules share their file's format name but are not LoRA factors: they convert; a
        // LyCORIS T-LoRA is kohya-named but no kohya LoRA: it is never copied as one; nor is a LyCORIS DoRA
        // or (IA)³ file, which needs the base (read only with --base).
        if read.format == to.adapterFormat, to != .lycorisTlora, !read.needsFrozenBase, !read.hasDoRA, !read.hasIA3,
           read.modules.allSatisfy({ $0.family == nil }),
           atTimestep == nil, rank == nil, dtype == nil, input != "-",
           FileManager.default.fileExists(atPath: input), let file = AdapterLocation.resolve(input), ConvertCommand.canReopen(file),
           !TorchInput.isArchive(file) {
            try copy(file, to: destination)
            Console.error("note: \(input) is already \(to.rawValue); copied unchanged to \(destination)")
            return
        }
        var adapter = try nonFinite.policy.admit(read)
        let baseWeights = try self.baseWeights(for: adapter)
        if let baseWeights, adapter.needsFrozenBase || to == .lycorisTlora { adapter = LycorisTLoRA.resolve(adapter, base: baseWeights) }
        let converted: Adapter, report: ConversionReport
        do {
            (converted, report) = try Converter.convert(adapter, ConvertRequest(to: to, atTimestep: atTimestep, rank: rank, flags: schedule.flags,
                                                                                skipUnsupported: skipUnsupported, base: baseWeights))
            try AdapterWriter.write(converted, format: to, to: destination,
                                    options: WriteOptions(dtype: dtype?.dtype, title: title, trigger: trigger, nonFinite: nonFinite.policy))
        } catch let error as UncarriedModules {
            throw CommandFailure("\(input): \(error) (--to \(to.rawValue))")
        }
        for warning in adapter.warnings { Console.error("warning: \(warning)") }
        let text = json ? ConvertReport.json(report, input: input, output: destination, from: adapter, to: converted).serialized()
                        : ConvertReport.human(report, input: input, output: destination, from: adapter, to: converted)
        if json, destination != "-" { Console.out(text) } else { Console.error(text) }
    }

    /// The `--base` checkpoint, opened once, when the conversion needs it: a LyCORIS T-LoRA (read or
    /// written) takes its frozen part from it, a DoRA or (IA)³ adapter's modules (with --rank) their W' − W.
    func baseWeights(for adapter: Adapter) throws -> BaseWeights? {
        guard let base else { return nil }
        if !adapter.needsFrozenBase && to != .lycorisTlora {
            if rank == nil {
                throw CommandFailure(adapter.hasDoRA || adapter.hasIA3
                    ? "--base needs --rank (a\(adapter.hasDoRA ? " DoRA" : "n (IA)³") module's change is approximated by a LoRA of that rank)"
                    : "--base is for DoRA and (IA)³ adapters (with --rank) and LyCORIS T-LoRAs; this adapter is none of them", exitCode: 2)
            }
            guard adapter.hasDoRA || adapter.hasIA3 else { return nil }
        }
        try BaseRequirement.requireSDXL(adapter, for: "convert --base (an SDXL checkpoint)")
        do { return BaseWeights(model: try SDXLModel.open(base), policy: nonFinite.policy) } catch {
            throw CommandFailure("\(base): not an SDXL checkpoint (\(error))")
        }
    }

    func defaultOutput() throws -> String {
        let isFile = FileManager.default.fileExists(atPath: input)
        let base = !isFile ? try AdapterArgument(input).label.replacingOccurrences(of: "catalog:", with: "").replacingOccurrences(of: "@", with: "-")
            : ((input as NSString).lastPathComponent as NSString).deletingPathExtension
        let folder = !isFile ? "." : (AdapterLocation.resolve(input).map { ($0 as NSString).deletingLastPathComponent } ?? ".")
        let name = to == .tloraOfficial ? "\(base)-official" : "\(base).\(to.rawValue).safetensors"
        return ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent(name)
    }

    /// Whether `path` can be read a second time: a pipe or FIFO (process substitution) was consumed
    /// by the first read, so its adapter is written from what was read instead of copied.
    static func canReopen(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    func copy(_ file: String, to destination: String) throws {
        let source = try SafeTensorsFile.open(file)
        let output = try AtomicOutput(destination)
        try output.write(source.headerBytes)
        try output.write(source.dataSection)
        try output.commit()
    }
}
