import GRDB
import GRDBSQLite

/// Reads stored blobs (`blobs.data`) by row id through one SQLite blob handle moved from row to row,
/// into a buffer of its own: one copy out of the database pages, where selecting the column would
/// have SQLite assemble each multi-page blob in a fresh allocation first.
final class BlobReader {
    private let connection: OpaquePointer
    private var handle: OpaquePointer?
    private let buffer = ReusableBuffer()

    /// Use only inside the transaction `db` is in, and drop before it ends.
    init(_ db: Database) throws {
        guard let connection = db.sqliteConnection else { throw CatalogError.io("the catalog connection is closed") }
        self.connection = connection
    }

    deinit { if let handle { sqlite3_blob_close(handle) } }

    /// The stored bytes of the blob row `rowID`, valid until the next call.
    func read(rowID: Int64) throws -> UnsafeRawBufferPointer {
        var code: Int32
        if let handle {
            code = sqlite3_blob_reopen(handle, rowID)
        } else {
            code = sqlite3_blob_open(connection, "main", "blobs", "data", rowID, 0, &handle)
        }
        guard code == SQLITE_OK, let handle else { throw failure() }
        let count = Int(sqlite3_blob_bytes(handle))
        let out = buffer.prefix(count)
        if count > 0 {
            code = sqlite3_blob_read(handle, out.baseAddress, Int32(count), 0)
            guard code == SQLITE_OK else { throw failure() }
        }
        return UnsafeRawBufferPointer(out)
    }

    /// The error SQLite reported; the handle is dropped, as SQLite no longer reads through it.
    private func failure() -> CatalogError {
        let message = String(cString: sqlite3_errmsg(connection))
        if let handle { sqlite3_blob_close(handle) }
        handle = nil
        return CatalogError.corrupt("cannot read the stored blob: \(message)")
    }
}
