import Adapters
import Foundation
import JSONOutput
import SafeTensors
import Sampling
#if canImport(Glibc)
import Glibc
#endif

/// What `sample` tells the user: adapter reports and per-step progress on stderr (steps only on a
/// terminal), or one JSON object per line on stdout with --json.
struct SampleProgress {
    let json: Bool
    let terminal = isatty(2) != 0

    func note(_ text: String, json value: JSONValue) {
        if json { Console.out(value.serialized()) } else { Console.error(text) }
    }

    func adapter(_ r: AdapterStack.Report) {
        for warning in r.warnings { Console.error("warning: \(warning)") }
        var parts: [String] = []
        if let s = r.schedule {
            let how = r.scheduleFromMetadata ? "standard LoRA with tlora.* schedule metadata, masked per step like a T-LoRA"
                                             : "T-LoRA, masked per step"
            parts.append("\(how) (rank \(s.minRank)…\(s.maxRank), α \(Converter.number(s.rankAlpha))): \(r.hooked.count) modules hooked")
        } else {
            parts.append("\(r.merged.count) modules merged into the weights")
        }
        if !r.skipped.isEmpty { parts.append("\(r.skipped.count) skipped") }
        if !r.textEncoderMerged.isEmpty { parts.append("\(r.textEncoderMerged.count) text-encoder modules merged") }
        if !r.unusedModules.isEmpty { parts.append("\(r.unusedModules.count) modules unused (\(Self.unusedWhy(r.unusedModules)))") }
        if !r.unknownKeys.isEmpty { parts.append("\(r.unknownKeys.count) unknown keys unused") }
        for s in r.skipped.prefix(10) { Console.error("warning: \(r.label): skipped \(s.module): \(s.reason)") }
        note("adapter \(r.label) × \(r.scale): " + parts.joined(separator: "; "), json: .object([
            ("event", .string("adapter")), ("adapter", .string(r.label)), ("scale", .double(Double(r.scale))),
            ("masked", .bool(r.schedule != nil)), ("schedule_from_metadata", .bool(r.scheduleFromMetadata)),
            ("merged", .int(r.merged.count)), ("hooked", .int(r.hooked.count)), ("text_encoder_merged", .int(r.textEncoderMerged.count)),
            ("skipped", .array(r.skipped.map { .object([("module", .string($0.module)), ("reason", .string($0.reason))]) })),
            ("unused", .array((r.unusedModules + r.unknownKeys).map { .string($0) })),
        ]))
    }

    /// Why modules went unused: text-encoder modules without encoders (embeddings given), or no such layer.
    static func unusedWhy(_ names: [String]) -> String {
        names.allSatisfy { !$0.hasPrefix("unet.") } ? "text-encoder modules: the embeddings are given" : "no such layer in this model"
    }

    func step(_ p: SDXLSampler.Progress) {
        let t = Converter.number(Double(p.timestep))
        if json {
            Console.out(JSONValue.object([("event", .string("step")), ("step", .int(p.step + 1)), ("steps", .int(p.steps)),
                                          ("timestep", .double(Double(p.timestep))), ("seconds", .double(p.seconds))]).serialized())
        } else if terminal {
            Console.error("step \(p.step + 1)/\(p.steps)  t = \(t)  \(String(format: "%.2f", p.seconds)) s")
        }
    }

    func done(outputLatents: String?, images: String?, count: Int) {
        let written = [outputLatents, images].compactMap { $0 }
        note("wrote \(written.joined(separator: ", ")) (\(count) image\(count == 1 ? "" : "s"))", json: .object([
            ("event", .string("done")), ("images", .int(count)),
            ("output_latents", outputLatents.map { .string($0) } ?? .null), ("output", images.map { .string($0) } ?? .null),
        ]))
    }
}
