import Adapters
import ArgumentParser
import JSONOutput
import SafeTensors

struct DiffCommand: DescribedFailures {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two adapters module by module.",
        discussion: """
        Per module: the norms of both deltas, the relative difference |dA - dB| / max(|dA|, |dB|) (Frobenius norms) and the cosine \
        similarity, computed from the low-rank factors in Float64. Without --timesteps, adapters are compared \
        as they act at t = 0. A module holding NaN or infinity is never equal to anything: it is named, and \
        the adapters differ. Exit status like diff(1): 0 when every module is equal within the tolerance and \
        both adapters have the same modules, 1 when they differ, 2 on error.
        """)

    static let examples: [Example] = [
        ("Check a conversion at three timesteps", "tlkit diff runs/sks-dog sks-dog.kohya.safetensors --timesteps 999,500,0"),
        ("Compare with a conversion that never touches the disk", "tlkit convert lora.safetensors --to peft -o - | tlkit diff lora.safetensors - && echo same"),
    ]

    @Argument(help: "First adapter.") var a: String
    @Argument(help: "Second adapter.") var b: String

    @Option(help: "Comma-separated DDPM timesteps to compare at (T-LoRA masks applied), e.g. 999,500,0.")
    var timesteps: String?

    @Option(parsing: .unconditional, help: "Largest relative difference counted as equal (default: \(DiffCommand.defaultTolerance)).")
    var tolerance: Double?
    static let defaultTolerance = 1e-6

    @Flag(help: "Print a JSON document with `summary` and `modules`.")
    var json = false

    @OptionGroup var catalog: CatalogOption

    // Like cmp(1): 1 means "different", so any failure exits 2.
    static var everyFailureExitCode: Int32? { 2 }

    func run() throws {
        var ts: [Double?] = [nil]
        if let timesteps {
            let parsed = timesteps.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil && (0...1000).contains($0!) }) else {
                throw CommandFailure("--timesteps takes comma-separated numbers between 0 and 1000")
            }
            ts = parsed
        }
        // Not refused by the non-finite policy: a diff's answer for such modules is "different", by name.
        let adapterA = try AdapterArgument(a).read(catalog: catalog, policy: nil), adapterB = try AdapterArgument(b).read(catalog: catalog, policy: nil)
        for finding in adapterA.nonFinite + adapterB.nonFinite { Console.error("tlkit: \(finding.description)") }
        let (results, summary) = try AdapterDiff.compare(adapterA, adapterB, timesteps: ts)
        let equal = results.allSatisfy { $0.finite && $0.relativeDifference <= tolerance ?? DiffCommand.defaultTolerance }
            && summary.onlyInA.isEmpty && summary.onlyInB.isEmpty && summary.nonFinite.isEmpty
        if json {
            Console.out(document(results, summary, equal: equal).serialized())
        } else {
            Console.out(human(results, summary, equal: equal))
        }
        if !equal { throw ExitCode(1) }
    }

    func document(_ results: [AdapterDiff.ModuleResult], _ s: AdapterDiff.Summary, equal: Bool) -> JSONValue {
        .object([
            ("summary", .object([
                ("equal", .bool(equal)),
                ("relative_difference", .double(s.relativeDifference)),
                ("cosine", s.cosine.map { .double($0) } ?? .null),
                ("modules_compared", .int(Set(results.map(\.module)).count)),
                ("nonfinite_modules", .array(s.nonFinite.map { .string($0) })),
                ("only_in_a", .array(s.onlyInA.map { .string($0) })),
                ("only_in_b", .array(s.onlyInB.map { .string($0) })),
                ("most_different", .array(top(results).map { .string($0.module) })),
                ("metadata_differences", .array(s.metadataDifferences.map {
                    .object([("key", .string($0.key)), ("a", .optional($0.a)), ("b", .optional($0.b))])
                })),
            ])),
            ("modules", .array(results.map { r in
                var fields: [(String, JSONValue)] = [("module", .string(r.module)), ("norm_a", .double(r.normA)), ("norm_b", .double(r.normB)),
                                                     ("relative_difference", .double(r.relativeDifference)), ("cosine", r.cosine.map { .double($0) } ?? .null)]
                if let t = r.timestep { fields.append(("timestep", .double(t))) }
                fields.append(("finite", .bool(r.finite)))
                return .object(fields)
            })),
        ])
    }

    func top(_ results: [AdapterDiff.ModuleResult]) -> [AdapterDiff.ModuleResult] {
        Array(results.sorted { $0.relativeDifference > $1.relativeDifference }.prefix(10))
    }

    func human(_ results: [AdapterDiff.ModuleResult], _ s: AdapterDiff.Summary, equal: Bool) -> String {
        var lines = ["\(equal ? "equal" : "different") within \(tolerance ?? DiffCommand.defaultTolerance): \(Set(results.map(\.module)).count) modules compared, mean relative difference \(String(format: "%.3g", s.relativeDifference)), cosine \(s.cosine.map { String(format: "%.6f", $0) } ?? "n/a")"]
        if !s.onlyInA.isEmpty { lines.append("only in A: \(s.onlyInA.count) (e.g. \(s.onlyInA[0]))") }
        if !s.onlyInB.isEmpty { lines.append("only in B: \(s.onlyInB.count) (e.g. \(s.onlyInB[0]))") }
        if !s.nonFinite.isEmpty { lines.append("NaN or infinite values: \(s.nonFinite.count) modules (e.g. \(s.nonFinite[0]))") }
        for r in top(results) where r.relativeDifference > 0 {
            lines.append("  \(String(format: "%.3g", r.relativeDifference))  cos \(r.cosine.map { String(format: "%.4f", $0) } ?? "n/a")  \(r.module)\(r.timestep.map { " @t=\($0)" } ?? "")")
        }
        for d in s.metadataDifferences.prefix(10) { lines.append("  metadata \(d.key): \(d.a ?? "—") → \(d.b ?? "—")") }
        return lines.joined(separator: "\n")
    }
}

import Foundation
