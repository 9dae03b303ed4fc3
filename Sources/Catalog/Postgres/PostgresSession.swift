import Foundation
import PostgresNIO

/// One connection to the catalog's server, used synchronously: the catalog's operations are plain
/// blocking calls, and this is the one place where PostgresNIO's work is waited for. The calling thread
/// waits on the futures of PostgresNIO's event-loop interface, which its own event-loop threads
/// complete: no Swift concurrency executor is involved, so callers that run on one (tests, async code
/// calling the catalog) cannot starve it.
///
/// Errors are translated here too, into messages that name the location without its password.
final class PostgresSession: @unchecked Sendable {
    let location: PostgresLocation
    private let connection: PostgresConnection
    private let logger: Logger

    /// How long connecting may take before the server counts as unreachable.
    static let connectTimeout: Int64 = 10

    init(_ location: PostgresLocation) throws {
        self.location = location
        // PostgresNIO's own log lines could include connection settings: keep them all quiet.
        var logger = Logger(label: "tlkit.catalog.postgres")
        logger.logLevel = .critical
        self.logger = logger
        let configuration = try PostgresSession.configuration(location)
        do {
            connection = try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(), configuration: configuration,
                                                        id: 1, logger: self.logger).wait()
        } catch {
            throw PostgresSession.explain(error, location, connecting: true)
        }
    }

    deinit {
        try? connection.close().wait()
    }

    private static func configuration(_ location: PostgresLocation) throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socket = location.socketPath {
            configuration = .init(unixSocketPath: socket, username: location.user, password: location.password, database: location.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch location.sslMode {
            case .disable: tls = .disable
            case .allow, .prefer, .require:
                // As libpq does for these modes: encrypt, without checking the server's certificate.
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .none
                let context = try PostgresSession.context(settings, location)
                tls = location.sslMode == .require ? .require(context) : .prefer(context)
            case .verifyCA, .verifyFull:
                tls = .require(try PostgresSession.context(PostgresSession.checkingSettings(location), location))
            }
            configuration = .init(host: location.host, port: location.port, username: location.user, password: location.password,
                                  database: location.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(connectTimeout)
        return configuration
    }

    private static func context(_ settings: TLSConfiguration, _ location: PostgresLocation) throws -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: settings) } catch {
            throw CatalogError.server(location: location.description, why: "cannot set up TLS: \(error)")
        }
    }

    /// `verify-ca` and `verify-full`: the server's chain must lead to a certificate of `sslrootcert`
    /// (`system`: the system's roots), and with `verify-full` name the host (or its IP address).
    private static func checkingSettings(_ location: PostgresLocation) throws -> TLSConfiguration {
        var settings = TLSConfiguration.makeClientConfiguration()
        settings.certificateVerification = location.sslMode == .verifyFull ? .fullVerification : .noHostnameVerification
        let file = location.sslRootCert ?? ""
        if file != "system" {
            guard FileSystem.exists(file) else {
                throw CatalogError.server(location: location.description, why: "sslmode=\(location.sslMode.rawValue) needs the CA certificate that signed the server's: the file '\(file)' does not exist (give sslrootcert=FILE or $PGSSLROOTCERT, or sslrootcert=system)")
            }
            settings.trustRoots = .file(file)
        }
        return settings
    }

    /// Runs one statement and returns all its rows.
    @discardableResult
    func query(_ sql: String, _ binds: PostgresBindings = PostgresBindings()) throws -> [PostgresRow] {
        try rows(of: send(sql, binds))
    }

    /// Sends one statement without waiting for its answer; `rows(of:)` waits for it. The connection
    /// answers statements in the order they were sent, so a caller can ask for the next while it works
    /// on the last.
    func send(_ sql: String, _ binds: PostgresBindings) -> EventLoopFuture<PostgresQueryResult> {
        connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
    }

    /// The rows of a statement `send` sent, once they are all in.
    func rows(of answer: EventLoopFuture<PostgresQueryResult>) throws -> [PostgresRow] {
        do {
            return try waitWhileConnected(answer).rows
        } catch {
            throw PostgresSession.explain(error, location, connecting: false)
        }
    }

    /// Waits for `future` unless the connection is gone. PostgresNIO drops a query written to a connection
    /// the server has already closed (its future then never completes): a client whose server crashed
    /// between two statements would wait forever. A connection seen closed for `closedGrace` ends the
    /// wait (a query the connection did take fails on its own before that).
    private func waitWhileConnected<T>(_ future: EventLoopFuture<T>) throws -> T {
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { _ in done.signal() }
        var closedSince: DispatchTime?
        while done.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            guard connection.isClosed else { continue }
            let since = closedSince ?? .now()
            closedSince = since
            if DispatchTime.now() > since + PostgresSession.closedGrace {
                throw PostgresSession.connectionClosed(location)
            }
        }
        return try future.wait()
    }

    static let closedGrace = DispatchTimeInterval.seconds(1)

    static func connectionClosed(_ location: PostgresLocation) -> CatalogError {
        CatalogError.server(location: location.description, why: "the server closed the connection; nothing half-written was kept (run the command again)")
    }

    /// Runs one statement with `values` bound to $1, $2, … (nil binds NULL).
    @discardableResult
    func query(_ sql: String, _ values: [(any PostgresThrowingDynamicTypeEncodable)?]) throws -> [PostgresRow] {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            if let value { try binds.append(value) } else { binds.appendNull() }
        }
        return try query(sql, binds)
    }

    /// Runs `body` in one transaction (`begin` says which kind): committed when it returns, rolled back
    /// when it throws. A process killed meanwhile leaves nothing: the server rolls back on disconnect.
    func transaction<T>(_ begin: String = "BEGIN", _ body: () throws -> T) throws -> T {
        try query(begin)
        do {
            let result = try body()
            try query("COMMIT")
            return result
        } catch {
            // A closed connection has nothing to roll back: the server did it when the connection ended.
            if !connection.isClosed { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    /// A message that says what went wrong without printing the password (PostgresNIO's own
    /// descriptions may include the connection settings, so only chosen fields are used).
    static func explain(_ error: any Error, _ location: PostgresLocation, connecting: Bool) -> any Error {
        if error is CatalogError { return error }
        let place = location.description
        guard let error = error as? PSQLError else {
            return CatalogError.server(location: place, why: connecting ? "cannot reach the server: \(error)" : "\(error)")
        }
        if let info = error.serverInfo {
            let message = info[.message] ?? "unknown server error"
            switch info[.sqlState] ?? "" {
            case "28P01", "28000": return CatalogError.server(location: place, why: "authentication failed: \(message)")
            case "3D000": return CatalogError.server(location: place, why: "no such database: \(message)")
            case "42501": return CatalogError.server(location: place, why: "permission denied: \(message) (the role '\(location.user)' may not do this here; 'tlkit init --reader/--writer' grants roles their access)")
            default: return CatalogError.server(location: place, why: "the server reported: \(message)")
            }
        }
        switch error.code {
        case .connectionError where error.underlying is NIOSSLError || error.underlying is NIOSSLExtraError || error.underlying is BoringSSLError:
            let mode = "sslmode=\(location.sslMode.rawValue)" + (location.sslRootCert.map { ", sslrootcert=\($0)" } ?? "")
            return CatalogError.server(location: place, why: "TLS failed, the server's certificate was not accepted (\(mode)): \(error.underlying!)")
        case .connectionError:
            let cause = error.underlying.map { " (\($0))" } ?? ""
            return CatalogError.server(location: place, why: "cannot reach the server\(cause)")
        case .serverClosedConnection, .uncleanShutdown:
            return connectionClosed(location)
        case .authMechanismRequiresPassword:
            return CatalogError.server(location: place, why: "authentication failed: the server asks for a password (give it in the URL or $PGPASSWORD)")
        case .unsupportedAuthMechanism:
            return CatalogError.server(location: place, why: "authentication failed: the server asks for an authentication method tlkit does not support")
        case .sslUnsupported:
            return CatalogError.server(location: place, why: "the server does not offer TLS (sslmode=require); use sslmode=prefer or disable")
        default:
            return CatalogError.server(location: place, why: connecting ? "cannot connect: \(error.code)" : "\(error.code)")
        }
    }
}
