import GRDB
import GRDBSQLite

/// Steps a prepared statement and reads the current row's columns straight from SQLite, without
/// GRDB's per-value decoding: `list` reads tens of thousands of values and this is most of its time.
struct RawRows {
    private let statement: Statement

    init(_ db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws {
        statement = try db.makeStatement(sql: sql)
        try statement.setArguments(arguments)
    }

    /// Moves to the next row; false at the end.
    func next() throws -> Bool {
        switch sqlite3_step(statement.sqliteStatement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(statement.sqliteStatement)))
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement.sqliteStatement, column) == SQLITE_NULL }

    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(statement.sqliteStatement, column)) }

    func optionalInt(_ column: Int32) -> Int? { isNull(column) ? nil : int(column) }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement.sqliteStatement, column) }

    /// The column's text as UTF-8 bytes, valid until the next step; nil for NULL.
    func utf8(_ column: Int32) -> UnsafeBufferPointer<UInt8>? {
        if isNull(column) { return nil }
        // SQLite's order: the text first, then its length.
        let start = sqlite3_column_text(statement.sqliteStatement, column)
        let count = Int(sqlite3_column_bytes(statement.sqliteStatement, column))
        return UnsafeBufferPointer(start: start, count: start == nil ? 0 : count)
    }

    func optionalText(_ column: Int32) -> String? { utf8(column).map { String(decoding: $0, as: UTF8.self) } }

    func text(_ column: Int32) -> String { optionalText(column) ?? "" }
}

extension RawRows: EntryColumns {
    func text(at column: Int) -> String? { optionalText(Int32(column)) }
    func int(at column: Int) -> Int? { optionalInt(Int32(column)) }
}
