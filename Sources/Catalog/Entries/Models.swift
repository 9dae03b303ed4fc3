import Foundation

/// What the caller knows about an adapter (from its inspector); every field is optional and stored in
/// searchable columns. The catalog itself never parses adapter formats.
public struct EntryFacts: Equatable, Sendable {
    public var kind: String?
    public var format: String?
    public var base: String?
    public var method: String?
    public var rank: Int?
    public var minRank: Int?
    public var trigger: String?
    public var token: String?
    public var className: String?
    public var steps: Int?
    /// `lora`, `locon`, `loha`, `lokr`, `dora`, `ia3` (nil for entries added before schema version 2).
    public var family: String?
    /// The SDXL-derived model metadata names (`pony`, `illustrious`, `noobai`).
    public var derivative: String?
    /// Words that call the adapter up: its trigger phrase and the tags of every training caption
    /// (nil for entries added before schema version 2; empty when the file names none).
    public var triggerWords: [String]?
    /// Every tag of kohya's `ss_tag_frequency` (searched by `list --search`, not printed).
    public var trainingTags: [String]?
    /// kohya's `sshs_model_hash` as the file's metadata states it.
    public var sshsModelHash: String?

    public init(kind: String? = nil, format: String? = nil, base: String? = nil, method: String? = nil,
                rank: Int? = nil, minRank: Int? = nil, trigger: String? = nil, token: String? = nil,
                className: String? = nil, steps: Int? = nil, family: String? = nil, derivative: String? = nil,
                triggerWords: [String]? = nil, trainingTags: [String]? = nil, sshsModelHash: String? = nil) {
        self.family = family
        self.derivative = derivative
        self.triggerWords = triggerWords
        self.trainingTags = trainingTags
        self.sshsModelHash = sshsModelHash
        self.kind = kind
        self.format = format
        self.base = base
        self.method = method
        self.rank = rank
        self.minRank = minRank
        self.trigger = trigger
        self.token = token
        self.className = className
        self.steps = steps
    }
}

/// One catalog entry as `list` and `show` report it.
public struct EntrySummary: Equatable, Sendable {
    public var reference: Reference { Reference(name: name, version: version) }
    public let name: String
    public let version: Int
    public let facts: EntryFacts
    public let note: String?
    public internal(set) var tags: [String]
    /// Size of the original file in bytes.
    public let size: Int
    /// Bytes the entry occupies when stored alone (header plus its compressed tensors).
    public let stored: Int
    /// Bytes this entry added to the catalog when it was added (the rest was shared).
    public let added: Int
    /// SHA-256 of the whole original file, lowercase hex.
    public let sha256: String
    /// `modelspec.hash_sha256` style: "0x" + SHA-256 of the data section (equals the addnet hash).
    public let dataHash: String
    public let tensorCount: Int
    public let source: String?
    /// When it was added, ISO 8601 UTC.
    public let addedAt: String
}

/// An entry with everything `show` needs.
public struct EntryDetail: Sendable {
    public let summary: EntrySummary
    /// The original header bytes (8-byte length prefix and JSON).
    public let headerBytes: [UInt8]
    /// Metadata in file order, parsed from the stored header.
    public let metadata: [(key: String, value: String)]
    public let tensors: [StoredTensor]
}

/// A tensor of an entry: its header description and the blob holding its bytes.
public struct StoredTensor: Sendable {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    public let size: Int
    public let blob: String
    public let codec: String
    public let stored: Int
}

/// Filters for `list` (all given ones must hold).
public struct ListFilter: Sendable {
    public var tag: String?
    /// The base (`sdxl`) or the SDXL derivative (`pony`) exactly.
    public var base: String?
    public var method: String?
    /// A shell-style glob on the name (`*`, `?`, `[...]`), case-sensitive.
    public var nameGlob: String?
    public var family: String?
    /// A case-insensitive substring of the name, a tag, a trigger word, a training tag, the base, the
    /// derivative or the family.
    public var search: String?

    public init(tag: String? = nil, base: String? = nil, method: String? = nil, nameGlob: String? = nil,
                family: String? = nil, search: String? = nil) {
        self.tag = tag
        self.base = base
        self.method = method
        self.nameGlob = nameGlob
        self.family = family
        self.search = search
    }

    /// Whether `entry` matches `search`: decided here, in Swift, so both backends fold case alike
    /// (SQLite's lower() knows only ASCII).
    func admits(_ entry: EntrySummary) -> Bool {
        guard let search, !search.isEmpty else { return true }
        let needle = search.lowercased()
        let f = entry.facts
        let fields = [entry.name, f.base, f.derivative, f.family].compactMap { $0 } + entry.tags + (f.triggerWords ?? []) + (f.trainingTags ?? [])
        return fields.contains { $0.lowercased().contains(needle) }
    }
}

/// What an `add` did.
public enum AddOutcome: Equatable, Sendable {
    /// A new version was stored.
    case added(Reference, AddStatistics)
    /// The exact same bytes are already stored under this reference; nothing was added.
    case alreadyStored(Reference)
}

public struct AddStatistics: Equatable, Sendable {
    public let tensors: Int
    /// Distinct tensors newly stored.
    public let newBlobs: Int
    /// Distinct tensors already present and shared.
    public let sharedBlobs: Int
    public let size: Int
    /// Bytes added to the catalog (compressed new tensors plus the header).
    public let addedBytes: Int
}

/// Something `verify` found wrong.
public struct Problem: Equatable, Sendable, CustomStringConvertible {
    /// The entry concerned, when known.
    public let reference: Reference?
    public let message: String

    public var description: String { reference.map { "\($0): \(message)" } ?? message }
}

/// What `gc` removed.
public struct GCStatistics: Equatable, Sendable {
    public let blobsRemoved: Int
    public let storedBytesRemoved: Int
    public let fileSizeBefore: Int
    public let fileSizeAfter: Int
}
