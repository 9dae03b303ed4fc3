import Foundation
import GRDB

extension Catalog {
    /// Re-hashes every stored tensor and rebuilds every file (or only those of `reference`), comparing
    /// with the SHA-256 sums recorded when they were added. An empty result means intact.
    public func verify(_ reference: Reference? = nil) throws -> [Problem] {
        try store.read { db in
            var problems: [Problem] = []
            let entries: [(Int64, Reference)]
            if let reference {
                let (id, version) = try entryID(db, reference)
                entries = [(id, Reference(name: reference.name, version: version))]
            } else {
                entries = try Row.fetchAll(db, sql: "SELECT id, name, version FROM entries ORDER BY name, version")
                    .map { ($0["id"], Reference(name: $0["name"], version: $0["version"])) }
                // Blobs no entry uses are checked too: a later add may share them.
                let orphans = try Row.fetchCursor(db, sql: """
                    SELECT b.sha256, b.codec, b.raw_size, b.data, b.reference, r.codec, r.raw_size, r.data, r.reference IS NOT NULL
                    FROM blobs b LEFT JOIN blobs r ON r.sha256 = b.reference
                    WHERE NOT EXISTS (SELECT 1 FROM entry_tensors t WHERE t.blob = b.sha256)
                    """)
                while let row = try orphans.next() {
                    if let problem = try Catalog.checkBlob(row) { problems.append(Problem(reference: nil, message: problem)) }
                }
            }
            var checked = Set<String>()
            for (id, ref) in entries {
                let row = try Row.fetchOne(db, sql: "SELECT sha256, data_hash, size FROM entries WHERE id = ?", arguments: [id])!
                let expectedFile: String = row[0], expectedData: String = row[1], size: Int = row[2]
                var length = 0
                // Tensors shared with an entry already checked need not be re-hashed on their own.
                let blobs = Set(try String.fetchAll(db, sql: "SELECT blob FROM entry_tensors WHERE entry_id = ?", arguments: [id]))
                let fresh = !blobs.isSubset(of: checked)
                let result = try Rebuild.run(db, entryID: id, checkBlobs: fresh, hashData: true) { length += $0.count }
                checked.formUnion(blobs)
                problems += result.problems.map { Problem(reference: ref, message: $0) }
                if length != size { problems.append(Problem(reference: ref, message: "rebuilt file is \(length) bytes, expected \(size)")) }
                if result.fileHash != expectedFile {
                    problems.append(Problem(reference: ref, message: "rebuilt file hashes to \(result.fileHash.prefix(16))…, expected \(expectedFile.prefix(16))…"))
                }
                if result.dataHash != expectedData {
                    problems.append(Problem(reference: ref, message: "tensor data hashes to \(result.dataHash.prefix(18))…, expected \(expectedData.prefix(18))…"))
                }
                if let header = try Data.fetchOne(db, sql: "SELECT bytes FROM entry_headers WHERE entry_id = ?", arguments: [id]) {
                    do { _ = try Catalog.parseHeader([UInt8](header), fileSize: size, name: ref.description) } catch {
                        problems.append(Problem(reference: ref, message: "\(error)"))
                    }
                }
            }
            return problems
        }
    }

    /// Decodes one blob row (sha256, codec, raw_size, data, then its reference's sha256, codec,
    /// raw_size, data and whether that has a reference) and checks its address; nil when intact.
    static func checkBlob(_ row: Row) throws -> String? {
        let reference = (row[4] as String?).map {
            StoredReference(blob: $0, codec: row[5], rawSize: row[6], stored: row[7], chained: row[8] ?? false)
        }
        return try row.withUnsafeData(atIndex: 3) { data in
            try checkBlob(sha: row[0], codecName: row[1], rawSize: row[2], stored: data, reference: reference)
        }
    }

    /// A blob's reference as stored (nil fields: its row is missing).
    struct StoredReference {
        let blob: String
        let codec: String?
        let rawSize: Int?
        let stored: Data?
        let chained: Bool
    }

    /// Decodes one unused blob's stored bytes (with its reference's, if it has one) and checks them
    /// against its address; nil when intact.
    static func checkBlob(sha: String, codecName: String, rawSize: Int, stored: Data?, reference: StoredReference?) throws -> String? {
        guard rawSize >= 0 else { return "unused blob \(sha.prefix(12))…: the row records a negative raw size (\(rawSize))" }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, rawSize), alignment: 16)
        defer { buffer.deallocate() }
        let decoded = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<rawSize])
        do {
            var referenceBytes: [UInt8]?
            if let reference {
                let part = Rebuild.ReferencePart(blob: reference.blob, codec: reference.codec, rawSize: reference.rawSize, rowID: nil,
                                                 chained: reference.chained)
                guard let codec = reference.codec, let size = reference.rawSize, let data = reference.stored, size >= 0,
                      !reference.chained else { throw Rebuild.unusable(part) }
                var bytes = [UInt8](repeating: 0, count: size)
                try data.withUnsafeBytes { d in
                    try bytes.withUnsafeMutableBytes { out in try Codec.decode(codecName: codec, rawSize: size, stored: d) { _ in out } }
                }
                referenceBytes = bytes
            }
            guard let stored else { throw CatalogError.corrupt("no data") }
            try stored.withUnsafeBytes { bytes in
                if let referenceBytes {
                    try referenceBytes.withUnsafeBytes { ref in
                        try Codec.decode(codecName: codecName, rawSize: rawSize, stored: bytes, reference: ref) { _ in decoded }
                    }
                } else {
                    try Codec.decode(codecName: codecName, rawSize: rawSize, stored: bytes) { _ in decoded }
                }
            }
        } catch {
            return "unused blob \(sha.prefix(12))…: cannot decode: \(error)"
        }
        let actual = Hashing.sha256(UnsafeRawBufferPointer(decoded))
        return actual == sha ? nil : "unused blob \(sha.prefix(12))…: bytes hash to \(actual.prefix(12))…"
    }
}
