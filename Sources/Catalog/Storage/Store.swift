import Foundation
import GRDB

/// The SQLite connection of one catalog: WAL mode, a busy timeout, checked and migrated on open.
/// Every write runs in one `BEGIN IMMEDIATE` transaction, retried while another process holds the lock.
///
/// One connection serves reads and writes: a command does one thing at a time, and a second
/// connection (a pool's reader) only costs time to open and close. Opening writes nothing — a pool
/// would switch a file to WAL and write a dummy transaction on every open, so even `list` would take
/// the write lock and leave a checkpoint to do on exit.
final class Store: @unchecked Sendable {
    let path: String
    let queue: DatabaseQueue

    /// How long a writer waits for another process's transaction before giving up.
    static let busyTimeout: TimeInterval = 120

    init(path: String, create: Bool) throws {
        self.path = path
        if let scheme = CatalogLocation.urlScheme(path) { throw CatalogError.unsupportedURL(scheme: scheme) }
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
            // Read blobs from the page cache without a system call per page.
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
            // Give the disk back after a big transaction has been checkpointed.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            // In WAL mode, NORMAL syncs at checkpoints only: a commit survives a killed process and
            // never corrupts the file; a power cut may lose the last commits.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        } catch let error as DatabaseError {
            throw CatalogError.io("\(path): cannot open the catalog: \(error.message ?? "\(error.resultCode)")")
        }
        if state == .catalog(version: Schema.version) {
            try confirmVersion()
        } else {
            try useWAL()
            try migrate()
        }
    }

    /// The file header said "current catalog"; the connection sees the log too, so ask it.
    private func confirmVersion() throws {
        let found = try queue.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
        if found > Schema.version { throw CatalogError.newerSchema(path: path, found: found, known: Schema.version) }
    }

    /// The page size of new catalogs. Blobs are written (to the log, then to the file) and read page by
    /// page, so larger pages mean fewer system calls: against 4 KiB, 16 KiB pages add fp16 LoRAs and
    /// fp32 checkpoints about 15 % faster for 0.2-0.3 % more space (a blob's last page is half empty
    /// on average, but pages also carry less per-page overhead); 64 KiB pages waste far more.
    static let pageSize = 16384

    /// Gives a new catalog its page size and switches it to WAL (both persistent settings of the file;
    /// the page size applies only while the file is still empty). The WAL switch needs a lock SQLite
    /// does not wait for: retry while another process is creating or opening the same catalog.
    private func useWAL() throws {
        let deadline = Date().addingTimeInterval(Store.busyTimeout)
        while true {
            do {
                let mode = try queue.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA page_size = \(Store.pageSize)")
                    return try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                }
                if mode?.lowercased() == "wal" { return }
                throw CatalogError.io("\(path): SQLite cannot switch the catalog to WAL mode (journal mode stays \(mode ?? "unknown"))")
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                usleep(20_000 + UInt32.random(in: 0..<30_000))
            } catch let error as DatabaseError {
                throw CatalogError.io("\(path): cannot open the catalog: \(error.message ?? "\(error.resultCode)")")
            }
        }
    }

    private func migrate() throws {
        // Two processes creating the same catalog race between reading the applied migrations and
        // running them; the loser's CREATE TABLE fails and rolls back, and a second pass sees them applied.
        for attempt in 0..<20 {
            do {
                try Schema.migrator.migrate(queue)
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
                return try queue.writeWithoutTransaction { db in
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

    /// Runs `body` outside any transaction (VACUUM, checkpoints).
    func writeWithoutTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.writeWithoutTransaction(body)
    }

    /// Runs `body` in one read transaction: it sees a single consistent state of the catalog.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.read(body)
    }
}
