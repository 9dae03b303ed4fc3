import Foundation

/// The words that call an adapter up, from what its metadata says: the trigger phrase (ModelSpec's
/// `modelspec.trigger_phrase`, tlkit's `tlora.token` and class, an official checkpoint's placeholder
/// token), then kohya's training captions (`ss_tag_frequency`: per dataset folder, each tag's count
/// over the captions). A tag in every caption of a folder is a trigger word (every caption when
/// `ss_dataset_dirs` gives the folder's image count, else the folder's most frequent tags), and so is
/// a DreamBooth folder's class text (`10_sks dog` trains "sks dog" ten times per epoch).
public enum TriggerWords {
    /// The trigger words of an adapter whose trigger phrase is `trigger` (commas separate several).
    public static func words(trigger: String?, metadata: [String: String]) -> [String] {
        var out: [String] = []
        func add(_ word: String) {
            let trimmed = word.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty && !out.contains(trimmed) { out.append(trimmed) }
        }
        for part in (trigger ?? "").split(separator: ",") { add(String(part)) }
        let folders = tagFrequency(metadata)
        let images = datasetImages(metadata)
        for (folder, counts) in folders.sorted(by: { $0.key < $1.key }) {
            if let underscore = folder.firstIndex(of: "_"), Int(folder[..<underscore]) != nil {
                add(String(folder[folder.index(after: underscore)...]))
            }
            guard let top = counts.values.max(), top > 0 else { continue }
            let every = images[folder] ?? top
            for (tag, count) in counts.sorted(by: { $0.key < $1.key }) where count >= every { add(tag) }
        }
        return out
    }

    /// Every tag of `ss_tag_frequency`, most frequent first (ties by name).
    public static func trainingTags(metadata: [String: String]) -> [String] {
        var totals: [String: Int] = [:]
        for counts in tagFrequency(metadata).values {
            for (tag, count) in counts {
                let trimmed = tag.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { totals[trimmed, default: 0] += count }
            }
        }
        return totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
    }

    /// `ss_tag_frequency` as folder → tag → count; empty when absent or not that JSON.
    static func tagFrequency(_ metadata: [String: String]) -> [String: [String: Int]] {
        guard let object = json(metadata["ss_tag_frequency"]) else { return [:] }
        var out: [String: [String: Int]] = [:]
        for (folder, value) in object {
            guard let counts = value as? [String: Any] else { continue }
            out[folder] = counts.compactMapValues { ($0 as? NSNumber)?.intValue }
        }
        return out
    }

    /// `ss_dataset_dirs` as folder → image count.
    static func datasetImages(_ metadata: [String: String]) -> [String: Int] {
        guard let object = json(metadata["ss_dataset_dirs"]) else { return [:] }
        return object.compactMapValues { (($0 as? [String: Any])?["img_count"] as? NSNumber)?.intValue }
    }

    private static func json(_ text: String?) -> [String: Any]? {
        guard let data = text?.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}
