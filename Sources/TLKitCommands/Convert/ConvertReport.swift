import Adapters
import JSONOutput
import SafeTensors

/// The conversion report: modules converted, dropped with the reason, ranks in/out, errors of lossy options.
enum ConvertReport {
    static func json(_ r: ConversionReport, input: String, output: String, from: Adapter, to: Adapter) -> JSONValue {
        .object([
            ("input", .string(input)),
            ("output", .string(output)),
            ("format_in", .string(from.format.rawValue)),
            ("format_out", .string(to.format.rawValue)),
            ("schedule", to.schedule.map { s in .object([("max_rank", .int(s.maxRank)), ("min_rank", .int(s.minRank)),
                                                        ("rank_alpha", .double(s.rankAlpha)), ("timesteps", .int(s.timesteps)),
                                                        ("components_per_rank", .int(to.componentsPerRank))]) } ?? .null),
            ("modules", .array(r.modules.map { m in
                .object([("module", .string(m.name)), ("rank_in", .int(m.rankIn)), ("rank_out", .int(m.rankOut)),
                         ("relative_error", m.relativeError.map { .double($0) } ?? .null)])
            })),
            ("dropped", .array(r.dropped.map { .object([("module", .string($0.module)), ("reason", .string($0.reason))]) })),
            ("overall_relative_error", r.overallError.map { .double($0) } ?? .null),
            ("notes", .array(r.notes.map { .string($0) })),
        ])
    }

    static func human(_ r: ConversionReport, input: String, output: String, from: Adapter, to: Adapter) -> String {
        var lines = ["\(input) (\(from.format.rawValue)) → \(output) (\(to.format.rawValue))"]
        let ranksIn = Set(r.modules.map(\.rankIn)).sorted(), ranksOut = Set(r.modules.map(\.rankOut)).sorted()
        lines.append("  \(r.modules.count) modules converted, rank \(span(ranksIn)) → \(span(ranksOut)); \(r.dropped.count) dropped")
        for d in r.dropped { lines.append("  dropped: \(d.module) (\(d.reason))") }
        if let s = to.schedule {
            lines.append("  schedule: rank \(s.minRank)…\(s.maxRank), alpha \(s.rankAlpha), \(to.componentsPerRank) component(s) per rank")
        }
        if let overall = r.overallError {
            let worst = r.modules.compactMap { m in m.relativeError.map { (m.name, $0) } }.max { $0.1 < $1.1 }
            lines.append("  relative error: overall \(format(overall))" + (worst.map { ", worst \(format($0.1)) in \($0.0)" } ?? ""))
        }
        for note in r.notes { lines.append("  note: \(note)") }
        return lines.joined(separator: "\n")
    }

    static func span(_ values: [Int]) -> String {
        guard let lo = values.first, let hi = values.last else { return "-" }
        return lo == hi ? "\(lo)" : "\(lo)–\(hi)"
    }

    static func format(_ x: Double) -> String { String(format: "%.3g", x) }
}

import Foundation
