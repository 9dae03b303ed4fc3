import Foundation
import PostgresNIO

/// Access for other roles to a catalog on a server (`tlkit init --reader ROLE --writer ROLE`), enforced
/// by PostgreSQL's privileges: a reader may only SELECT, so `list`, `show`, `get` and `verify` work and
/// every change (`add`, `rm`, `tag`, `untag`, `gc`, `push` into it) is refused by the server; a writer
/// may also insert, update and delete rows, which is what adding, removing, tagging and `gc` need.
/// Neither may create, alter or drop the tables: upgrades stay with the tables' owner.
public enum CatalogRoles {
    /// Grants `readers` read access and `writers` read-write access to the catalog `store` (a server's).
    /// A reader's earlier write privileges on the tables are revoked. Every role must exist; one that
    /// is a superuser or owns the tables is refused as a reader, because the server lets it write anyway.
    public static func grant(_ store: any CatalogStore, readers: [String], writers: [String]) throws {
        guard let catalog = store as? PostgresCatalog else {
            throw CatalogError.io("\(store.location): a catalog file has no roles; --reader and --writer apply to a postgresql:// catalog (use the file's permissions instead)")
        }
        try catalog.grant(readers: readers, writers: writers)
    }
}

extension PostgresCatalog {
    /// The catalog's tables, and the one whose rows only migrations change.
    static let tables = ["tlkit_schema", "blobs", "blob_chunks", "entries", "entry_headers", "entry_tensors", "tags", "import_cache"]

    func grant(readers: [String], writers: [String]) throws {
        let place = location
        try session.transaction {
            let roles = try session.query("SELECT rolname, rolsuper, pg_has_role(rolname, (SELECT relowner FROM pg_class WHERE oid = 'entries'::regclass), 'USAGE') FROM pg_roles WHERE rolname = ANY($1)",
                                          [readers + writers])
                .map { try $0.decode((String, Bool, Bool).self) }
            for role in readers + writers where !roles.contains(where: { $0.0 == role }) {
                throw CatalogError.server(location: place, why: "the role '\(role)' does not exist on the server; create it first (CREATE ROLE \(role) LOGIN), then run 'tlkit init' again")
            }
            for (role, superuser, owner) in roles where readers.contains(role) && (superuser || owner) {
                throw CatalogError.server(location: place, why: "the role '\(role)' cannot be a reader: it \(superuser ? "is a superuser" : "owns the catalog's tables"), and the server lets it write whatever is granted")
            }
            let schema = PostgresCatalog.identifier(try session.query("SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'entries'::regclass")[0].decode(String.self))
            let all = PostgresCatalog.tables.map { schema + "." + $0 }.joined(separator: ", ")
            let rows = PostgresCatalog.tables.dropFirst().map { schema + "." + $0 }.joined(separator: ", ")
            let sequences = try session.query("SELECT pg_get_serial_sequence($1, 'id'), pg_get_serial_sequence($2, 'id')", ["\(schema).blobs", "\(schema).entries"])[0]
                .decode((String, String).self)
            // PostgreSQL 17 lets a non-owner VACUUM (gc's last step) with MAINTAIN; earlier servers skip it with a warning.
            let maintain = try session.query("SELECT current_setting('server_version_num')::int >= 170000")[0].decode(Bool.self)
            for role in readers.map(PostgresCatalog.identifier) {
                try session.query("GRANT USAGE ON SCHEMA \(schema) TO \(role)")
                try session.query("REVOKE ALL ON \(all) FROM \(role)")
                try session.query("REVOKE ALL ON SEQUENCE \(sequences.0), \(sequences.1) FROM \(role)")
                try session.query("GRANT SELECT ON \(all) TO \(role)")
            }
            for role in writers.map(PostgresCatalog.identifier) {
                try session.query("GRANT USAGE ON SCHEMA \(schema) TO \(role)")
                try session.query("GRANT SELECT ON \(all) TO \(role)")
                try session.query("GRANT INSERT, UPDATE, DELETE ON \(rows) TO \(role)")
                try session.query("GRANT USAGE ON SEQUENCE \(sequences.0), \(sequences.1) TO \(role)")
                if maintain { try session.query("GRANT MAINTAIN ON \(schema).blobs, \(schema).blob_chunks TO \(role)") }
            }
        }
    }

    /// `name` quoted as an SQL identifier (any character allowed, quotes doubled).
    static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
