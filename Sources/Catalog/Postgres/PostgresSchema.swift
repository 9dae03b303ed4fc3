/// The catalog's tables on a PostgreSQL server: the same concepts as the SQLite file (`Schema`), with
/// each blob's stored bytes split into chunks of at most `chunkBytes`, so no value is ever huge.
/// `tlkit_schema` holds the schema version, so a database from a newer tlkit is refused before
/// anything is written. Names and tags sort bytewise (`COLLATE "C"`), as SQLite sorts them.
enum PostgresSchema {
    /// The newest schema version this build knows.
    static let version = 3

    /// The largest stored chunk of a blob.
    static let chunkBytes = 1 << 20

    /// Every statement of version 1, run in one transaction.
    static let v1 = [
        "CREATE TABLE tlkit_schema (version integer NOT NULL)",
        "INSERT INTO tlkit_schema (version) VALUES (1)",
        """
        CREATE TABLE blobs (
            id bigserial PRIMARY KEY,
            sha256 text COLLATE "C" NOT NULL UNIQUE,  -- SHA-256 of the raw tensor bytes, lowercase hex
            codec text NOT NULL,                      -- raw | zstd | shuffleN+zstd
            raw_size bigint NOT NULL,
            stored_size bigint NOT NULL
        )
        """,
        """
        CREATE TABLE blob_chunks (
            blob_id bigint NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
            seq integer NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (blob_id, seq)
        )
        """,
        """
        CREATE TABLE entries (
            id bigserial PRIMARY KEY,
            name text COLLATE "C" NOT NULL,
            version bigint NOT NULL,
            sha256 text NOT NULL,
            data_hash text NOT NULL,
            size bigint NOT NULL,
            stored bigint NOT NULL,
            added_bytes bigint NOT NULL,
            tensor_count bigint NOT NULL,
            kind text, format text, base text, method text,
            rank bigint, min_rank bigint,
            trigger text, token text, class text, steps bigint,
            note text,
            source text,
            added_at text NOT NULL,
            UNIQUE (name, version)
        )
        """,
        "CREATE INDEX entries_sha256 ON entries(sha256)",
        "CREATE INDEX entries_base ON entries(base)",
        "CREATE INDEX entries_method ON entries(method)",
        """
        CREATE TABLE entry_headers (
            entry_id bigint PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
            bytes bytea NOT NULL
        )
        """,
        """
        CREATE TABLE entry_tensors (
            entry_id bigint NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            ordinal bigint NOT NULL,
            name text NOT NULL,
            blob text COLLATE "C" NOT NULL REFERENCES blobs(sha256),
            PRIMARY KEY (entry_id, ordinal)
        )
        """,
        "CREATE INDEX entry_tensors_blob ON entry_tensors(blob)",
        """
        CREATE TABLE tags (
            entry_id bigint NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            tag text COLLATE "C" NOT NULL,
            PRIMARY KEY (entry_id, tag)
        )
        """,
        "CREATE INDEX tags_tag ON tags(tag)",
    ]

    /// Every statement of version 2 (run on a version 1 catalog in one transaction): the facts `list
    /// --search` and `dups` use, and the cache of `add --recursive`, keyed by host and path because many
    /// hosts import into one server.
    static let v2 = [
        "ALTER TABLE entries ADD COLUMN family text",
        "ALTER TABLE entries ADD COLUMN derivative text",
        "ALTER TABLE entries ADD COLUMN trigger_words text",
        "ALTER TABLE entries ADD COLUMN training_tags text",
        "ALTER TABLE entries ADD COLUMN sshs_model_hash text",
        "CREATE INDEX entries_family ON entries(family)",
        """
        CREATE TABLE import_cache (
            host text COLLATE "C" NOT NULL,
            path text COLLATE "C" NOT NULL,
            size bigint NOT NULL,
            mtime_ns bigint NOT NULL,
            inode bigint NOT NULL,
            entry_id bigint NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            PRIMARY KEY (host, path)
        )
        """,
        "CREATE INDEX import_cache_entry ON import_cache(entry_id)",
        "UPDATE tlkit_schema SET version = 2",
    ]

    /// Version 3: a blob may be stored as its XOR with another blob (`Codec.xorShuffleZstd`);
    /// `reference` names that blob, itself stored without one (`DeltaReference`). The index serves `gc`.
    static let v3 = [
        "ALTER TABLE blobs ADD COLUMN reference text COLLATE \"C\" REFERENCES blobs(sha256)",
        "CREATE INDEX blobs_reference ON blobs(reference) WHERE reference IS NOT NULL",
        "UPDATE tlkit_schema SET version = 3",
    ]

    /// The statements that bring a database from schema version `found` (0: none) to `version`, in order.
    static func upgrade(from found: Int) -> [String] {
        [v1, v2, v3].enumerated().filter { $0.offset + 1 > found }.flatMap(\.element)
    }

    /// Advisory lock keys (one namespace of 64-bit keys per database). Adds hold the gc key shared and
    /// `gc` holds it exclusively, so a `gc` never runs while an add may reference a stored tensor;
    /// creating the schema holds its own key, so two first adds do not race.
    static let gcLockKey: Int64 = 0x746C_6B63_0000_0001
    static let schemaLockKey: Int64 = 0x746C_6B63_0000_0002
}
