import Foundation
import PostgresNIO
import SafeTensors

/// A tlkit adapter catalog in a PostgreSQL database: the same entries, REFs, deduplicated tensors and
/// codecs as the SQLite file, for many hosts writing at once. How each guarantee is kept (one
/// transaction per add, consecutive versions, `gc` beside adds) is told where it is enforced and in
/// docs/server-catalog.md.
///
/// The operations live in extensions: `PostgresAdd`, `PostgresRead`, `PostgresEdit`, `PostgresVerify`.
public final class PostgresCatalog: CatalogStore, @unchecked Sendable {
    let session: PostgresSession

    public var location: String { session.location.description }

    private init(session: PostgresSession) {
        self.session = session
    }

    /// Connects to the catalog at `location`. With `create`, a database without the catalog's tables
    /// gets them; without it, that is an error. An older catalog is upgraded (which takes the tables'
    /// owner); a database from a newer tlkit is refused untouched.
    public static func open(_ location: PostgresLocation, create: Bool) throws -> PostgresCatalog {
        let session = try PostgresSession(location)
        let found = try schemaVersion(session)
        if found == nil && !create { throw CatalogError.noCatalog(path: location.description) }
        if found != PostgresSchema.version { try migrate(session) }
        return PostgresCatalog(session: session)
    }

    /// The catalog at `location`, or nil when the database has no catalog tables yet (nothing is
    /// created). A catalog of an older schema is upgraded.
    public static func openIfPresent(_ location: PostgresLocation) throws -> PostgresCatalog? {
        let session = try PostgresSession(location)
        guard let found = try schemaVersion(session) else { return nil }
        if found != PostgresSchema.version { try migrate(session) }
        return PostgresCatalog(session: session)
    }

    /// Creates the tables, or upgrades older ones, in one transaction. Two first adds may race to
    /// create the tables: the second waits for the lock, then finds them. The lock is taken before the
    /// transaction starts, because a transaction sees tables that others created only from its start
    /// (the server refreshes its view of them then). Only the tables' owner may upgrade them.
    private static func migrate(_ session: PostgresSession) throws {
        try session.query("SELECT pg_advisory_lock($1)", [PostgresSchema.schemaLockKey])
        defer { _ = try? session.query("SELECT pg_advisory_unlock($1)", [PostgresSchema.schemaLockKey]) }
        try session.transaction {
            let found = try schemaVersion(session) ?? 0
            guard found < PostgresSchema.version else { return }
            do {
                for statement in PostgresSchema.upgrade(from: found) { try session.query(statement) }
            } catch let error as CatalogError where found > 0 {
                throw CatalogError.server(location: session.location.description, why: "the catalog has schema version \(found) and this tlkit needs \(PostgresSchema.version); upgrading it failed (\(error)) — run any tlkit command on it once as the owner of its tables")
            }
        }
    }

    /// The schema version, nil for a database without the catalog. Throws for a newer schema, and for
    /// a database holding tables of the catalog's names that tlkit did not make.
    private static func schemaVersion(_ session: PostgresSession) throws -> Int? {
        let place = session.location.description
        let marked = try session.query("SELECT to_regclass('tlkit_schema') IS NOT NULL, to_regclass('entries') IS NOT NULL OR to_regclass('blobs') IS NOT NULL")
        let (hasSchema, hasTables) = try marked[0].decode((Bool, Bool).self)
        guard hasSchema else {
            if hasTables { throw CatalogError.notACatalog(path: place, why: "it has tables named 'entries' or 'blobs' but no tlkit_schema") }
            return nil
        }
        let found = try session.query("SELECT max(version) FROM tlkit_schema")[0].decode(Int?.self) ?? 0
        if found > PostgresSchema.version { throw CatalogError.newerSchema(path: place, found: found, known: PostgresSchema.version) }
        return found
    }

    public func latestVersion(of name: String) throws -> Int? {
        try session.query("SELECT max(version) FROM entries WHERE name = $1", [name])[0].decode(Int?.self)
    }

    /// Runs `body` in one read-only transaction that sees a single state of the catalog.
    func read<T>(_ body: () throws -> T) throws -> T {
        try session.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// The row id of the entry `reference` names (the latest version when none is given).
    func entryID(_ reference: Reference) throws -> (id: Int64, version: Int) {
        let rows: [PostgresRow]
        if let version = reference.version {
            rows = try session.query("SELECT id, version FROM entries WHERE name = $1 AND version = $2", [reference.name, version])
        } else {
            rows = try session.query("SELECT id, version FROM entries WHERE name = $1 ORDER BY version DESC LIMIT 1", [reference.name])
        }
        guard let row = rows.first else {
            let versions = try session.query("SELECT version FROM entries WHERE name = $1 ORDER BY version", [reference.name])
                .map { try $0.decode(Int.self) }
            throw Catalog.notFound(reference, versions: versions, location: location)
        }
        return try row.decode((Int64, Int).self)
    }

    /// The stored bytes of blob `id`, its chunks laid end to end in `buffer` (valid until its next use).
    func blobBytes(_ id: Int64, into buffer: ReusableBuffer) throws -> UnsafeRawBufferPointer {
        try PostgresCatalog.joinChunks(try session.query(PostgresCatalog.chunksQuery, [id]), into: buffer)
    }

    static let chunksQuery = "SELECT data FROM blob_chunks WHERE blob_id = $1 ORDER BY seq"

    /// A blob's chunk rows, in order, copied into `buffer`.
    static func joinChunks(_ rows: [PostgresRow], into buffer: ReusableBuffer) throws -> UnsafeRawBufferPointer {
        joinChunks(try rows.map { try $0.decode(ByteBuffer.self) }, into: buffer)
    }

    /// A blob's chunks laid end to end in `buffer` (valid until its next use).
    static func joinChunks(_ chunks: [ByteBuffer], into buffer: ReusableBuffer) -> UnsafeRawBufferPointer {
        let out = buffer.prefix(chunks.reduce(0) { $0 + $1.readableBytes })
        var offset = 0
        for chunk in chunks {
            chunk.withUnsafeReadableBytes { bytes in
                UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + bytes.count)]).copyMemory(from: bytes)
                offset += bytes.count
            }
        }
        return UnsafeRawBufferPointer(out)
    }

    /// Streams the entry `id` through `Rebuild` (see `Rebuild.run`), reading each blob's chunks.
    func rebuild(entryID id: Int64, checkBlobs: Bool, hashData: Bool = false, stopAtFirstProblem: Bool = false,
                 sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws -> Rebuild.Result {
        let header = try session.query("SELECT bytes FROM entry_headers WHERE entry_id = $1", [id]).first
            .map { Array(try $0.decode(ByteBuffer.self).readableBytesView) }
        let parts = try session.query("""
            SELECT t.name, t.blob, b.codec, b.raw_size, b.id, b.reference, r.codec, r.raw_size, r.id, r.reference IS NOT NULL
            FROM entry_tensors t LEFT JOIN blobs b ON b.sha256 = t.blob LEFT JOIN blobs r ON r.sha256 = b.reference
            WHERE t.entry_id = $1 ORDER BY t.ordinal
            """, [id]).map { row in
            let (name, blob, codec, rawSize, blobID, reference, referenceCodec, referenceSize, referenceID, chained)
                = try row.decode((String, String, String?, Int?, Int64?, String?, String?, Int?, Int64?, Bool?).self)
            return Rebuild.Part(name: name, blob: blob, codec: codec, rawSize: rawSize, rowID: blobID, reference: reference.map {
                Rebuild.ReferencePart(blob: $0, codec: referenceCodec, rawSize: referenceSize, rowID: referenceID, chained: chained ?? false)
            })
        }
        let prefetch = BlobPrefetch(session: session, parts: parts)
        return try Rebuild.stream(header: header, parts: parts, read: { try prefetch.read($0) }, checkBlobs: checkBlobs,
                                  hashData: hashData, stopAtFirstProblem: stopAtFirstProblem, sink: sink)
    }
}
