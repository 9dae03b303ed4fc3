import GRDB
import GRDBSQLite

/// Inserts compressed blobs with the SQLite C API, binding the bytes where they lie: no copy into a
/// `Data` per tensor on the way into the database.
struct BlobWriter {
    private let statement: Statement
    private let connection: OpaquePointer

    init(_ db: Database) throws {
        guard let connection = db.sqliteConnection else { throw CatalogError.io("the catalog connection is closed") }
        self.connection = connection
        statement = try db.makeStatement(sql: "INSERT OR IGNORE INTO blobs (sha256, codec, raw_size, stored_size, data, reference) VALUES (?, ?, ?, ?, ?, ?)")
    }

    /// Stores one blob (`reference`: the blob it was encoded against); false when a blob with this
    /// hash was already there (nothing is written).
    func insert(sha256: String, codec: Codec, rawSize: Int, stored: UnsafeRawBufferPointer, reference: String?) throws -> Bool {
        let s = statement.sqliteStatement
        defer {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
        }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        var code = sqlite3_bind_text(s, 1, sha256, -1, transient)
        if code == SQLITE_OK { code = sqlite3_bind_text(s, 2, codec.name, -1, transient) }
        if code == SQLITE_OK { code = sqlite3_bind_int64(s, 3, Int64(rawSize)) }
        if code == SQLITE_OK { code = sqlite3_bind_int64(s, 4, Int64(stored.count)) }
        if code == SQLITE_OK {
            // The bytes stay valid until the statement is reset, so SQLite may read them in place.
            code = stored.isEmpty ? sqlite3_bind_zeroblob(s, 5, 0)
                : sqlite3_bind_blob64(s, 5, stored.baseAddress, sqlite3_uint64(stored.count), nil)
        }
        if code == SQLITE_OK, let reference { code = sqlite3_bind_text(s, 6, reference, -1, transient) }
        if code == SQLITE_OK { code = sqlite3_step(s) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)),
                                sql: statement.sql)
        }
        return sqlite3_changes(connection) > 0
    }
}
