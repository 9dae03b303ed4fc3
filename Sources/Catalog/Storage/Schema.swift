import GRDB

/// The catalog's tables, created and upgraded by numbered migrations. `PRAGMA application_id` marks a
/// file as a tlkit catalog and `PRAGMA user_version` holds the schema version, so a foreign database or
/// one from a newer tlkit is recognised before anything is written.
enum Schema {
    /// 'tlkc' — written into the SQLite header by the first migration.
    static let applicationID: Int32 = 0x746C_6B63
    /// The newest schema version this build knows.
    static let version = 3

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE blobs (
                    sha256 TEXT PRIMARY KEY NOT NULL,     -- SHA-256 of the raw tensor bytes, lowercase hex
                    codec TEXT NOT NULL,                  -- raw | zstd | shuffleN+zstd (| xor+shuffleN+zstd from v2)
                    raw_size INTEGER NOT NULL,
                    stored_size INTEGER NOT NULL,
                    data BLOB NOT NULL
                );
                CREATE TABLE entries (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    sha256 TEXT NOT NULL,                 -- whole original file
                    data_hash TEXT NOT NULL,              -- "0x" + SHA-256 of the data section
                    size INTEGER NOT NULL,                -- original file size
                    stored INTEGER NOT NULL,              -- header + compressed tensors, counted alone
                    added_bytes INTEGER NOT NULL,         -- what this entry added (the rest was shared)
                    tensor_count INTEGER NOT NULL,
                    kind TEXT, format TEXT, base TEXT, method TEXT,
                    rank INTEGER, min_rank INTEGER,
                    trigger TEXT, token TEXT, class TEXT, steps INTEGER,
                    note TEXT,
                    source TEXT,                          -- path it was added from
                    added_at TEXT NOT NULL,               -- ISO 8601 UTC
                    UNIQUE (name, version)
                );
                CREATE INDEX entries_sha256 ON entries(sha256);
                CREATE INDEX entries_base ON entries(base);
                CREATE INDEX entries_method ON entries(method);
                CREATE TABLE entry_headers (
                    entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
                    bytes BLOB NOT NULL                   -- original header: 8-byte length + JSON
                );
                CREATE TABLE entry_tensors (
                    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
                    ordinal INTEGER NOT NULL,             -- position in the data section
                    name TEXT NOT NULL,
                    blob TEXT NOT NULL REFERENCES blobs(sha256),
                    PRIMARY KEY (entry_id, ordinal)
                ) WITHOUT ROWID;
                CREATE INDEX entry_tensors_blob ON entry_tensors(blob);
                CREATE TABLE tags (
                    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
                    tag TEXT NOT NULL,
                    PRIMARY KEY (entry_id, tag)
                ) WITHOUT ROWID;
                CREATE INDEX tags_tag ON tags(tag);
                PRAGMA application_id = \(applicationID);
                PRAGMA user_version = 1;
                """)
        }
        // v2: the facts `list --search` and `dups` use, and the cache of `add --recursive`.
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE entries ADD COLUMN family TEXT;            -- lora | locon | loha | lokr | dora
                ALTER TABLE entries ADD COLUMN derivative TEXT;        -- pony | illustrious | noobai
                ALTER TABLE entries ADD COLUMN trigger_words TEXT;     -- one per line
                ALTER TABLE entries ADD COLUMN training_tags TEXT;     -- ss_tag_frequency's tags, one per line
                ALTER TABLE entries ADD COLUMN sshs_model_hash TEXT;   -- kohya's metadata hash, as the file says
                CREATE INDEX entries_family ON entries(family);
                CREATE TABLE import_cache (
                    host TEXT NOT NULL,                   -- the importing host's name
                    path TEXT NOT NULL,                   -- absolute path of the imported file
                    size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    inode INTEGER NOT NULL,
                    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
                    PRIMARY KEY (host, path)
                ) WITHOUT ROWID;
                CREATE INDEX import_cache_entry ON import_cache(entry_id);
                PRAGMA user_version = 2;
                """)
        }
        // A blob may be stored as its XOR with another blob (`Codec.xorShuffleZstd`): `reference` names
        // that blob, which is itself stored without one (`DeltaReference`). The index serves `gc`.
        migrator.registerMigration("v3") { db in
            try db.execute(sql: """
                ALTER TABLE blobs ADD COLUMN reference TEXT REFERENCES blobs(sha256);
                CREATE INDEX blobs_reference ON blobs(reference) WHERE reference IS NOT NULL;
                PRAGMA user_version = 3;
                """)
        }
        return migrator
    }

    /// What a path holds before we touch it.
    enum State: Equatable {
        case missing
        /// An empty file or an SQLite database without any table: safe to turn into a catalog.
        case blank
        case catalog(version: Int)
    }

    private static func bigEndian(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Looks at `path` without writing to it; throws for a foreign or newer file.
    static func inspect(path: String) throws -> State {
        guard let size = FileSystem.size(path) else { return .missing }
        if size == 0 { return .blank }
        guard let handle = fopen(path, "rb") else {
            throw CatalogError.io("\(path): cannot open the catalog: \(String(cString: strerror(errno)))")
        }
        var header = [UInt8](repeating: 0, count: 100)
        let n = fread(&header, 1, 100, handle)
        fclose(handle)
        guard n >= 16, header[0..<16].elementsEqual("SQLite format 3\0".utf8) else {
            throw CatalogError.notACatalog(path: path, why: "not an SQLite database")
        }
        // The common case, a current catalog, is told by the file header alone (user_version at byte 60,
        // application_id at byte 68, big-endian) without opening a second connection. The header of a
        // WAL database can lag behind its log, so `Store` confirms the version on its own connection.
        if n == 100 && bigEndian(header, 68) == UInt32(bitPattern: applicationID) && bigEndian(header, 60) == UInt32(version) {
            return .catalog(version: version)
        }
        // A plain connection that only reads: the main file is not modified.
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let (appID, userVersion, objects, foreignMigrations): (Int32, Int, [String], Int)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            (appID, userVersion, objects, foreignMigrations) = try queue.read { db in
                let objects = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
                let foreign = objects.contains("grdb_migrations")
                    ? try Int.fetchOne(db, sql: "SELECT count(*) FROM grdb_migrations WHERE identifier NOT LIKE 'v%'") ?? 0 : 0
                return (try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0,
                        try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0, objects, foreign)
            }
            try queue.close()
        } catch let error as DatabaseError {
            throw CatalogError.notACatalog(path: path, why: "SQLite cannot read it: \(error.message ?? "\(error.resultCode)")")
        }
        if appID == applicationID {
            if userVersion > version { throw CatalogError.newerSchema(path: path, found: userVersion, known: version) }
            return userVersion == 0 ? .blank : .catalog(version: userVersion)
        }
        // Another process may be creating this catalog right now: the migrator's bookkeeping table
        // comes first, in its own transaction, before the first migration commits.
        if appID == 0 && foreignMigrations == 0 && objects.allSatisfy({ $0 == "grdb_migrations" }) { return .blank }
        let shown = objects.prefix(5).joined(separator: ", ") + (objects.count > 5 ? ", …" : "")
        let id = String(UInt32(bitPattern: appID), radix: 16)
        throw CatalogError.notACatalog(path: path, why: "an SQLite database with application_id 0x\(id) and tables \(shown.isEmpty ? "(none)" : shown)")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
