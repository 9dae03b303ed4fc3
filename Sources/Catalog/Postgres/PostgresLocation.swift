import Foundation

/// A PostgreSQL catalog location, read the way libpq reads a connection URL:
/// `postgresql://[user[:password]@][host][:port][/dbname][?param=value&…]` (also `postgres://`), with
/// the parameters `host`, `port`, `dbname`, `user`, `password`, `sslmode` and `sslrootcert`, and `PGHOST`,
/// `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT` and the password file for
/// what the URL leaves out.
/// A host that starts with `/` is the folder of the server's Unix socket.
public struct PostgresLocation: Equatable, Sendable {
    public static let schemes: Set<String> = ["postgresql", "postgres"]

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// Never printed: `description` leaves it out.
    public var password: String?
    public var sslMode: SSLMode
    /// The CA certificates (PEM) that `verify-ca` and `verify-full` trust; `system` for the system's.
    public var sslRootCert: String? = nil

    /// libpq's modes. `verify-ca` checks the server's certificate against `sslRootCert`, `verify-full`
    /// also that it names the host; the others do not check it.
    public enum SSLMode: String, Sendable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca", verifyFull = "verify-full"

        var checksCertificate: Bool { self == .verifyCA || self == .verifyFull }
    }

    /// The Unix socket path when `host` is a folder.
    var socketPath: String? { host.hasPrefix("/") ? host + "/.s.PGSQL.\(port)" : nil }

    /// The location as it may be printed: a URL without the password.
    public var description: String {
        let user = PostgresLocation.escape(self.user), database = PostgresLocation.escape(self.database)
        if host.hasPrefix("/") { return "postgresql://\(user)@:\(port)/\(database)?host=\(PostgresLocation.escape(host))" }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgresql://\(user)@\(shownHost):\(port)/\(database)"
    }

    public static func parse(_ url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresLocation {
        func fail(_ why: String) -> CatalogError { .invalidLocation(why) }
        guard let schemeEnd = url.range(of: "://"), schemes.contains(String(url[..<schemeEnd.lowerBound])) else {
            throw fail("a PostgreSQL catalog URL starts with postgresql:// or postgres://")
        }
        var rest = Substring(url[schemeEnd.upperBound...])
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") { query = rest[rest.index(after: mark)...]; rest = rest[..<mark] }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") { path = rest[rest.index(after: slash)...]; rest = rest[..<slash] }
        var user: String?, password: String?, host: String?, port: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try decode(credentials[..<colon])
                password = try decode(credentials[credentials.index(after: colon)...])
            } else {
                user = try decode(credentials)
            }
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw fail("an IPv6 host needs its closing ]") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            if rest.hasPrefix(":") { port = String(rest.dropFirst()) } else if !rest.isEmpty { throw fail("unexpected text after the host") }
        } else if let colon = rest.firstIndex(of: ":") {
            host = try decode(rest[..<colon])
            port = String(rest[rest.index(after: colon)...])
        } else {
            host = try decode(rest)
        }
        if host == "" { host = nil }
        if port == "" { port = nil }
        var database: String? = path.isEmpty ? nil : try decode(path)
        var sslMode: String?, sslRootCert: String?
        for pair in query.split(separator: "&") where !pair.isEmpty {
            guard let equals = pair.firstIndex(of: "=") else { throw fail("the URL parameter '\(pair)' has no value") }
            let key = try decode(pair[..<equals]), value = try decode(pair[pair.index(after: equals)...])
            switch key {
            case "host": host = value
            case "port": port = value
            case "dbname": database = value
            case "user": user = value
            case "password": password = value
            case "sslmode": sslMode = value
            case "sslrootcert": sslRootCert = value
            default: throw fail("unknown URL parameter '\(key)' (known: host, port, dbname, user, password, sslmode, sslrootcert)")
            }
        }
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let resolvedUser = user ?? env("PGUSER") ?? currentUser()
        let portText = port ?? env("PGPORT") ?? "5432"
        guard let portNumber = Int(portText), (1...65535).contains(portNumber) else { throw fail("invalid port '\(portText)'") }
        let modeText = sslMode ?? env("PGSSLMODE") ?? "prefer"
        guard let mode = SSLMode(rawValue: modeText) else {
            throw fail("sslmode '\(modeText)' is not supported (use disable, allow, prefer, require, verify-ca or verify-full)")
        }
        // As libpq does, a certificate-checking mode without a CA file looks for ~/.postgresql/root.crt.
        var rootCert = sslRootCert ?? env("PGSSLROOTCERT")
        if rootCert == nil, mode.checksCertificate { rootCert = CatalogLocation.home(environment) + "/.postgresql/root.crt" }
        var location = PostgresLocation(host: host ?? env("PGHOST") ?? defaultHost(), port: portNumber, user: resolvedUser,
                                        database: database ?? env("PGDATABASE") ?? resolvedUser,
                                        password: password ?? env("PGPASSWORD"), sslMode: mode, sslRootCert: rootCert)
        if location.password == nil {
            let file = env("PGPASSFILE") ?? CatalogLocation.home(environment) + "/.pgpass"
            location.password = location.passwordFromFile(file)
        }
        return location
    }

    /// The password a libpq password file (`~/.pgpass`, or `$PGPASSFILE`) gives this location: lines of
    /// `host:port:database:user:password`, `*` matching anything, `\:` and `\\` for a literal colon and
    /// backslash, the first matching line winning. As libpq does, a file that others may read is
    /// ignored, and the server's default socket folder is matched as `localhost`.
    func passwordFromFile(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_mode & 0o077 == 0,
              let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let hostName = host == PostgresLocation.defaultSocketFolder ? "localhost" : host
        let wanted = [hostName, String(port), database, user]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix("#") {
            var fields: [String] = [], field = "", escaped = false
            for c in line where c != "\r" {
                if escaped { field.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == ":" && fields.count < 4 {
                    fields.append(field); field = ""
                } else { field.append(c) }
            }
            fields.append(field)
            guard fields.count == 5, zip(fields, wanted).allSatisfy({ $0 == "*" || $0 == $1 }) else { continue }
            return fields[4]
        }
        return nil
    }

    /// libpq's default on Debian: the server's socket folder when there is one, else the loopback host.
    private static func defaultHost() -> String {
        FileSystem.exists(defaultSocketFolder) ? defaultSocketFolder : "localhost"
    }

    /// Where Debian's server puts its Unix socket.
    static let defaultSocketFolder = "/var/run/postgresql"

    private static func currentUser() -> String {
        if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "postgres"
    }

    private static func decode(_ text: Substring) throws -> String {
        guard let decoded = String(text).removingPercentEncoding else {
            throw CatalogError.invalidLocation("bad percent-encoding in the URL")
        }
        return decoded
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? text
    }
}
