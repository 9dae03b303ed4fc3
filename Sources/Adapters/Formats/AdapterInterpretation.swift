import Crypto
import DigestHex
import Foundation
import SafeTensors

/// Whether what a command cannot apply stops the read (`convert`, `sample`, `diff`, …: strict) or is only
/// noted (`inspect` and the catalog, which describe any file: lenient).
public enum Strictness: Sendable {
    case strict, lenient
}

/// What an adapter file means — its format, the official layout's hparams.yml, method, schedule,
/// components per rank and modules — decided here once for the reader and for `inspect`, so that
/// `inspect` reports what `convert` applies. Strict interpretation throws where a command must refuse the
/// file; lenient interpretation records the same refusal as a note and leaves the refused value out (no
/// schedule rather than a guessed one). Lenient interpretation skips modules a command would refuse
/// without a note: `inspect` describes the modules itself.
struct AdapterInterpretation {
    var format: AdapterFormat
    /// `../logs/hparams.yml` beside `checkpoint-N/`, when the layout can have one and it exists.
    var hparamsPath: String?
    var hparams: OfficialHparams?
    /// The base model (Bases/), which decides how module names are read.
    var base = BaseVerdict()
    var method: AdapterMethod?
    var schedule: RankSchedule?
    var componentsPerRank = 1
    /// The modules that map to a model layer, and their tensors in the file.
    var modules: [ModuleInfo] = []
    var moduleKeys: [ModuleKeys] = []
    var unknownKeys: [String]
    /// What does not stop a command (a stale schedule), one line each.
    var warnings: [String] = []
    /// Lenient only: why a command would refuse the file's method or schedule, one line each.
    var notes: [String] = []

    init(format: AdapterFormat, unknownKeys: [String]) {
        self.format = format
        self.unknownKeys = unknownKeys
    }

    /// `acceptDoRA`: the caller has the base weights DoRA and (IA)³ modules need (`merge --into`); strict
    /// interpretation refuses them otherwise. `hparamsPath` is where the official layout's hparams.yml would be; `loadHparams` reads it and is
    /// asked only for that layout (the fuzzer passes the text inline).
    static func interpret(keys: AdapterKeys, file: SafeTensorsFile, path: String, flags: ScheduleFlags = ScheduleFlags(),
                          strictness: Strictness, acceptDoRA: Bool = false, hparamsPath: String?,
                          hparams loadHparams: () throws -> OfficialHparams?) throws -> AdapterInterpretation {
        let strict = strictness == .strict
        var result = AdapterInterpretation(format: keys.format, unknownKeys: keys.unknownKeys)
        /// Strict: the error. Lenient: `note` (the error's text when nil) is recorded instead.
        func refuse(_ message: String, note: String? = nil) throws {
            if strict { throw AdapterError(message) }
            result.notes.append(note ?? withoutPath(message, path) + " (a command that applies the adapter refuses this file)")
        }

        if strict {
            guard !keys.modules.isEmpty || keys.unsupportedVariant != nil else {
                throw AdapterError("\(path): not a LoRA or T-LoRA adapter (no adapter tensors found)")
            }
            if keys.unsupportedVariant == "DoRA", !acceptDoRA {
                let module = keys.modules.first { $0.tensors[.magnitude] != nil }?.fileName ?? "?"
                throw AdapterError("\(path): \(DoRAFactors.refusal(module: module))")
            }
            if keys.unsupportedVariant == "IA3", !acceptDoRA {
                let module = keys.modules.first(where: IA3.isIA3)?.fileName ?? "?"
                throw AdapterError("\(path): \(IA3Factors.refusal(module: module))")
            }
            if let variant = keys.unsupportedVariant, !["DoRA", "IA3"].contains(variant) {
                throw AdapterError("\(path): \(variant) adapters are recognised but not supported by this command")
            }
        }

        // The format: attn-procs names with hparams.yml (or a schedule on the command line) are the official layout.
        var hparamsUnreadable = false
        if result.format == .attnProcs || result.format == .tloraOfficial {
            result.hparamsPath = hparamsPath
            do {
                result.hparams = try loadHparams()
            } catch where !strict {
                result.notes.append("\(error): a command that applies the adapter refuses this file")
                hparamsUnreadable = true
            }
            if result.hparams != nil { result.format = .tloraOfficial }
        }
        if result.format == .attnProcs, flags.minRank != nil { result.format = .tloraOfficial }

        result.base = BaseIdentification.identify(keys: keys, file: file, path: path, isOfficial: result.format == .tloraOfficial)
        // diffusers never wrote FLUX.1 attention-processor LoRAs: such names are the official FLUX T-LoRA's.
        if result.format == .attnProcs, result.base.base == .flux1 { result.format = .tloraOfficial }
        var leftOut: [ModuleKeys] = []
        for module in keys.modules {
            if result.base.base == .flux1, result.format == .tloraOfficial, FluxOfficialNames.unapplied(module.fileName) {
                leftOut.append(module)
                continue
            }
            guard let canonical = BaseNames.canonical(fileName: module.fileName, format: result.format, base: result.base.base) else {
                result.unknownKeys += module.tensors.values.sorted()
                continue
            }
            let info: ModuleInfo
            do {
                info = try AdapterReader.describe(module, canonical: canonical, file: file, path: path, format: result.format,
                                                  base: result.base.base)
            } catch where !strict {
                continue
            }
            result.modules.append(info)
            result.moduleKeys.append(module)
        }
        if !leftOut.isEmpty { result.warnings.append("\(path): \(FluxOfficialNames.leftOut(leftOut, file: file))") }
        if strict, result.modules.isEmpty {
            let unknown = result.unknownKeys
            let layer = result.base.base.map { $0 == .sdxl ? "an SDXL layer" : "a layer of \($0.displayName)" } ?? "an SDXL layer"
            throw AdapterError("\(path): no module matches \(layer) (\(unknown.count) unrecognised tensors, e.g. \(unknown.first ?? ""))")
        }

        let metadata = file.metadata
        let modules = result.modules
        switch result.format {
        case .tloraOfficial:
            let method = result.hparams?.method ?? .assumedScheduled(ortho: modules.contains { $0.isOrtho })
            result.method = method
            let maxModuleRank = modules.map(\.rank).max() ?? 0
            let maxRank = flags.maxRank ?? result.hparams?.loraRank ?? maxModuleRank
            if !method.isMasked {
                // Unmasked methods keep every component: min = max, and min_rank does not matter.
                result.schedule = RankSchedule(maxRank: maxRank, minRank: maxRank)
            } else if let minRank = flags.minRank ?? result.hparams?.minRank {
                result.schedule = RankSchedule(maxRank: maxRank, minRank: minRank, rankAlpha: flags.rankAlpha ?? result.hparams?.rankAlpha ?? 1)
            } else if let hparams = result.hparams {
                try refuse("\(path): \(hparams.path) has no min_rank: give --min-rank; the official inference silently assumes min rank 1",
                           note: "hparams.yml has no min_rank: commands that apply the schedule refuse this file without --min-rank (the official inference silently assumes 1)")
            } else if !hparamsUnreadable {
                try refuse("\(path): official T-LoRA checkpoint without ../logs/hparams.yml: give --min-rank (and --max-rank, --rank-alpha if not \(maxModuleRank) and 1); the official inference silently assumes min rank 1",
                           note: "no ../logs/hparams.yml beside checkpoint-N/: the schedule needs --min-rank (the official inference silently assumes 1)")
            }
        case .tlkit:
            do { result.method = try named(metadata, path: path) } catch let error as AdapterError { try refuse(error.message) }
            do { result.componentsPerRank = try components(metadata, path: path) } catch let error as AdapterError { try refuse(error.message) }
            // A tlkit file's schedule is taken as written.
            result.schedule = schedule(from: metadata)
        default:
            // LyCORIS stores no schedule: the command line gives it, or tlora.* metadata tlkit wrote.
            if modules.contains(where: \.frozenFromBase) {
                if let minRank = flags.minRank {
                    result.method = .tlora
                    result.schedule = RankSchedule(maxRank: flags.maxRank ?? modules.map(\.rank).max() ?? 0, minRank: minRank,
                                                   rankAlpha: flags.rankAlpha ?? 1)
                    break
                }
                if schedule(from: metadata) == nil {
                    result.warnings.append("\(path): a LyCORIS T-LoRA stores no schedule: it applies with all components at every timestep (as LyCORIS does when no mask is set); give --min-rank (and --max-rank, --rank-alpha) to keep its schedule")
                    break
                }
            }
            // A standard LoRA may carry a folded T-LoRA schedule; it applies only while the tensors are
            // those it was written for.
            guard let folded = schedule(from: metadata) else { break }
            let c: Int
            do { c = try components(metadata, path: path) } catch let error as AdapterError {
                try refuse(error.message)
                break
            }
            let fresh = metadata["tlora.data_sha256"] == SHA256.hash(data: file.dataSection).hex
            guard fresh, modules.allSatisfy({ $0.rank == c * folded.maxRank }) else {
                result.warnings.append("\(path): stale tlora metadata (the tensors changed since the schedule was written); applying the adapter unmasked")
                break
            }
            do {
                result.method = try named(metadata, path: path)
                result.schedule = folded
                result.componentsPerRank = c
            } catch let error as AdapterError { try refuse(error.message) }
        }
        if let schedule = result.schedule {
            do {
                try schedule.validate()
                if let bad = modules.first(where: { $0.rank != result.componentsPerRank * schedule.maxRank && $0.rank != schedule.maxRank }) {
                    throw AdapterError("module \(bad.name) has rank \(bad.rank) but the schedule's max rank is \(schedule.maxRank)")
                }
            } catch {
                result.schedule = nil
                try refuse("\(path): \(error)")
            }
        }
        return result
    }

    /// A message without its leading `path: `, for `inspect`, which names the file already.
    static func withoutPath(_ line: String, _ path: String) -> String {
        line.hasPrefix(path + ": ") ? String(line.dropFirst(path.count + 2)) : line
    }

    /// The `tlora.*` schedule in metadata, when complete and valid.
    static func schedule(from metadata: [String: String]) -> RankSchedule? {
        guard let maxRank = metadata["tlora.max_rank"].flatMap(Int.init),
              let minRank = metadata["tlora.min_rank"].flatMap(Int.init) else { return nil }
        let schedule = RankSchedule(maxRank: maxRank, minRank: minRank,
                                    rankAlpha: metadata["tlora.rank_alpha"].flatMap(Double.init) ?? 1,
                                    timesteps: metadata["tlora.timesteps"].flatMap(Int.init) ?? 1000)
        return (try? schedule.validate()) != nil ? schedule : nil
    }

    /// `tlora.method`, when the file names one; a name tlkit does not know is refused.
    static func named(_ metadata: [String: String], path: String) throws -> AdapterMethod? {
        guard let text = metadata["tlora.method"] else { return nil }
        guard let method = AdapterMethod(rawValue: text) else {
            throw AdapterError("\(path): tlora.method is '\(text)', not one of \(AdapterMethod.allNames)")
        }
        return method
    }

    /// `tlora.components_per_rank`, bounded so that products with a rank cannot overflow.
    static func components(_ metadata: [String: String], path: String) throws -> Int {
        guard let text = metadata["tlora.components_per_rank"] else { return 1 }
        guard let c = Int(text), (1...RankSchedule.largestRank).contains(c) else {
            throw AdapterError("\(path): tlora.components_per_rank is '\(text)', not a count between 1 and \(RankSchedule.largestRank)")
        }
        return c
    }
}
