import SafeTensors

/// What every catalog backend offers: the SQLite file (`Catalog`) and the PostgreSQL server
/// (`PostgresCatalog`). Commands hold an `any CatalogStore` from `CatalogStores.open` and never learn
/// which backend they talk to; both give the same REFs, versions, JSON-visible fields and bytes.
public protocol CatalogStore: AnyObject, Sendable {
    /// Where the catalog is, fit to print (a URL is shown without its password).
    var location: String { get }

    /// The latest version of `name`, or nil when there is no such name.
    func latestVersion(of name: String) throws -> Int?

    /// Stores `file` as the next version of `name` in one transaction (see `Catalog.add`); `digests`
    /// taken from `file` beforehand spare the hashing.
    func add(file: SafeTensorsFile, originalPath: String?, name: String, tags: [String], note: String?,
             facts: EntryFacts, level: Int?, digests: AddDigests?, beforeCommit: () -> Void) throws -> AddOutcome

    /// Every entry matching `filter`, ordered by name then version.
    func list(filter: ListFilter) throws -> [EntrySummary]

    /// The entry `reference` names, with its header, metadata and tensors.
    func entry(_ reference: Reference) throws -> EntryDetail

    /// Writes the original file of `reference` to `output`, each tensor checked before it is written.
    func write(_ reference: Reference, to output: AtomicOutput) throws

    /// The entry's original file, rebuilt in memory and checked against its SHA-256.
    func file(_ reference: Reference) throws -> SafeTensorsFile

    /// Removes the entry (with `allVersions`, every version of its name); returns what was removed.
    func remove(_ reference: Reference, allVersions: Bool) throws -> [Reference]

    /// Adds `tags` to the entry; returns the tags it now has.
    func tag(_ reference: Reference, _ tags: [String]) throws -> [String]

    /// Removes `tags` from the entry; returns the tags it still has.
    func untag(_ reference: Reference, _ tags: [String]) throws -> [String]

    /// Deletes tensors no entry uses and compacts the storage.
    func gc() throws -> GCStatistics

    /// Totals over the whole catalog: entries, distinct tensors, raw and stored bytes.
    func totals() throws -> (entries: Int, blobs: Int, originalBytes: Int, storedBytes: Int)

    /// Re-hashes every stored tensor and rebuilds every file (or only those of `reference`).
    func verify(_ reference: Reference?) throws -> [Problem]

    /// The files `add --recursive` imported on `host` under `folder`, by absolute path.
    func importCache(host: String, under folder: String) throws -> [String: ImportRecord]

    /// Records that the file at `path` on `host`, as `stamp` says, is the entry `reference`.
    func recordImport(host: String, path: String, stamp: FileStamp, reference: Reference) throws

    /// Every use of a stored tensor that more than one entry uses, ordered by tensor.
    func sharedTensorUses() throws -> [SharedTensorUse]

    /// Runs `body` on one consistent state of the catalog (the source of a copy, see `CatalogTransfer`).
    func readSnapshot<T>(_ body: (any CatalogSnapshot) throws -> T) throws -> T

    /// Runs `body` in one write transaction that receives a copy (see `CatalogTransfer`).
    func receive<T>(_ body: (any CatalogReceiver) throws -> T) throws -> T
}
