import Foundation
import GRDB

/// The SQLite connection pool of one catalog: WAL mode, a busy timeout, checked and migrated on open.
/// Every write runs in one `BEGIN IMMEDIATE` transaction, retried while another process holds the lock.
final class Store: @unchecked Sendable {
    let path: String
    let pool: DatabasePool

    /// How long a writer waits for another process's transaction before giving up.
    static let busyTimeout: TimeInterval = 120

    init(path: String, create: Bool) throws {
        self.path = path
        let state = try Schema.inspect(path: path)
        if !create {
            switch state {
            case .missing, .blank: throw CatalogError.noCatalog(path: path)
            case .catalog: break
            }
        }
        if state == .missing { try FileSystem.makeFolders(FileSystem.folder(of: path)) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(Store.busyTimeout)
        configuration.prepareDatabase { db in
            // SQLite's default 4 KiB pages: a blob wastes half a page on average, so larger pages cost
            // more space than they save time with the many small tensors of LoRA files.
            // Read blobs from the page cache without a system call per page.
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
            // Give the disk back after a big transaction has been checkpointed.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
        }
        // Switching a new file to WAL needs a lock SQLite does not wait for: retry while another
        // process is creating or opening the same catalog.
        let deadline = Date().addingTimeInterval(Store.busyTimeout)
        while true {
            do {
                pool = try DatabasePool(path: path, configuration: configuration)
                break
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                usleep(20_000 + UInt32.random(in: 0..<30_000))
            } catch let error as DatabaseError {
                throw CatalogError.io("\(path): cannot open the catalog: \(error.message ?? "\(error.resultCode)")")
            }
        }
        if state != .catalog(version: Schema.version) {
            try migrate()
        }
    }

    private func migrate() throws {
        // Two processes creating the same catalog race between reading the applied migrations and
        // running them; the loser's CREATE TABLE fails and rolls back, and a second pass sees them applied.
        for attempt in 0..<20 {
            do {
                try Schema.migrator.migrate(pool)
                return
            } catch let error as DatabaseError where attempt < 19 {
                _ = error
                usleep(50_000 + UInt32.random(in: 0..<50_000))
            }
        }
    }

    /// Runs `body` in one immediate write transaction, waiting for other writers.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        var attempts = 0
        while true {
            do {
                return try pool.writeWithoutTransaction { db in
                    var result: T?
                    try db.inTransaction(.immediate) {
                        result = try body(db)
                        return .commit
                    }
                    return result!
                }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && attempts < 100 {
                // The busy timeout covers ordinary waits; BUSY can still come straight back (WAL recovery).
                attempts += 1
                usleep(50_000)
            }
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }
}
