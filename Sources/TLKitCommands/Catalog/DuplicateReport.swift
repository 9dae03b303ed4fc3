import Adapters
import Catalog
import Foundation

/// What `dups` finds in a catalog: entries with identical files or identical tensor data, tensors
/// stored once for several entries, and near-duplicate adapters (`NearDuplicates`).
struct DuplicateReport {
    struct Group {
        let hash: String
        let references: [Reference]
    }

    struct Sharing {
        let references: [Reference]
        let tensors: Int
        /// Raw bytes that would be stored again without deduplication.
        let bytesSaved: Int
    }

    struct Near {
        let a: Reference
        let b: Reference
        let base: String?
        let modules: Int
        let cosine: Double
    }

    var identicalFiles: [Group] = []
    /// Same tensor data (AutoV3), other bytes: the metadata differs.
    var identicalData: [Group] = []
    var sharing: [Sharing] = []
    var near: [Near] = []
    /// Adapters compared for near-duplicates, and entries that could not be (with why).
    var compared = 0
    var notCompared: [(Reference, String)] = []

    /// Examines every entry of `store`; `threshold` is the cosine at which two adapters are near-duplicates.
    static func examine(_ store: any CatalogStore, threshold: Double) throws -> DuplicateReport {
        var report = DuplicateReport()
        let entries = try store.list(filter: ListFilter())
        for (hash, members) in Dictionary(grouping: entries, by: \.sha256) where members.count > 1 {
            report.identicalFiles.append(Group(hash: hash, references: members.map(\.reference)))
        }
        for (hash, members) in Dictionary(grouping: entries, by: \.autoV3) where Set(members.map(\.sha256)).count > 1 {
            report.identicalData.append(Group(hash: hash, references: members.map(\.reference)))
        }
        report.identicalFiles.sort { $0.references.first!.description < $1.references.first!.description }
        report.identicalData.sort { $0.references.first!.description < $1.references.first!.description }
        report.sharing = sharingGroups(try store.sharedTensorUses())
        findNear(store, entries, threshold: threshold, into: &report)
        return report
    }

    /// Tensors used by several entries, grouped by the set of entries that use them.
    static func sharingGroups(_ uses: [SharedTensorUse]) -> [Sharing] {
        var byGroup: [[Reference]: (tensors: Int, bytes: Int)] = [:]
        for (_, blobUses) in Dictionary(grouping: uses, by: \.blob) {
            let references = blobUses.map(\.reference).sorted { $0.description < $1.description }
            guard references.count > 1 else { continue }
            byGroup[references, default: (0, 0)].tensors += 1
            byGroup[references, default: (0, 0)].bytes += blobUses[0].rawSize * (references.count - 1)
        }
        return byGroup.map { Sharing(references: $0.key, tensors: $0.value.tensors, bytesSaved: $0.value.bytes) }
            .sorted { $0.bytesSaved != $1.bytesSaved ? $0.bytesSaved > $1.bytesSaved : $0.references.description < $1.references.description }
    }

    /// Near-duplicates among the adapters, base by base: signatures first, then each candidate pair's
    /// cosine from the factors. Entries of one tensor data are left out (they are identical).
    static func findNear(_ store: any CatalogStore, _ entries: [EntrySummary], threshold: Double, into report: inout DuplicateReport) {
        let adapters = entries.filter { $0.facts.kind == "lora" || $0.facts.kind == "tlora" }
        func read(_ entry: EntrySummary) throws -> Adapter {
            try AdapterReader.read(file: try store.file(entry.reference), path: "catalog:\(entry.reference)")
        }
        var signatures: [NearDuplicates.Signature?] = []
        for entry in adapters {
            do {
                let signature = try NearDuplicates.signature(try read(entry))
                if signature.norms.values.contains(where: { !$0.isFinite }) {
                    report.notCompared.append((entry.reference, "holds NaN or infinity"))
                    signatures.append(nil)
                } else {
                    signatures.append(signature)
                    report.compared += 1
                }
            } catch {
                report.notCompared.append((entry.reference, "\(error)"))
                signatures.append(nil)
            }
        }
        let byBase = Dictionary(grouping: adapters.indices.filter { signatures[$0] != nil }) { adapters[$0].facts.base ?? "" }
        for base in byBase.keys.sorted() {
            let members = byBase[base]!
            let pairs = NearDuplicates.candidates(members.map { signatures[$0]! }, threshold: threshold)
            // Candidates come ordered by their first member: keep it loaded while its partners are read.
            var held: (index: Int, adapter: Adapter)?
            for (p, q) in pairs {
                let i = members[p], j = members[q]
                let a = adapters[i], b = adapters[j]
                if a.autoV3 == b.autoV3 { continue }
                if held?.index != i {
                    held = nil
                    if let adapter = try? read(a) { held = (index: i, adapter: adapter) }
                }
                guard let first = held?.adapter, let second = try? read(b),
                      let found = NearDuplicates.cosine(first, signatures[i]!, second, signatures[j]!),
                      found.cosine >= threshold else { continue }
                report.near.append(Near(a: a.reference, b: b.reference, base: a.facts.base, modules: found.modules, cosine: found.cosine))
            }
        }
        report.near.sort { ($0.a.description, $0.b.description) < ($1.a.description, $1.b.description) }
    }
}
