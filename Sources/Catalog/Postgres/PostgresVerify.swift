import Foundation
import PostgresNIO

extension PostgresCatalog {
    /// The same checks as `Catalog.verify`, in one read-only snapshot of the server's catalog.
    public func verify(_ reference: Reference?) throws -> [Problem] {
        try read {
            var problems: [Problem] = []
            let entries: [(Int64, Reference)]
            if let reference {
                let (id, version) = try entryID(reference)
                entries = [(id, Reference(name: reference.name, version: version))]
            } else {
                entries = try session.query("SELECT id, name, version FROM entries ORDER BY name, version").map { row in
                    let (id, name, version) = try row.decode((Int64, String, Int).self)
                    return (id, Reference(name: name, version: version))
                }
                // Blobs no entry uses are checked too: a later add may share them.
                let orphans = try session.query("""
                    SELECT b.id, b.sha256, b.codec, b.raw_size, b.reference, r.id, r.codec, r.raw_size, r.reference IS NOT NULL
                    FROM blobs b LEFT JOIN blobs r ON r.sha256 = b.reference
                    WHERE NOT EXISTS (SELECT 1 FROM entry_tensors t WHERE t.blob = b.sha256) ORDER BY b.id
                    """)
                let buffer = ReusableBuffer()
                for row in orphans {
                    let (id, sha, codec, rawSize, referenceSha, referenceID, referenceCodec, referenceSize, chained)
                        = try row.decode((Int64, String, String, Int, String?, Int64?, String?, Int?, Bool?).self)
                    let reference = try referenceSha.map {
                        Catalog.StoredReference(blob: $0, codec: referenceCodec, rawSize: referenceSize,
                                                stored: try referenceID.map { Data(try blobBytes($0, into: buffer)) }, chained: chained ?? false)
                    }
                    let stored = Data(try blobBytes(id, into: buffer))
                    if let problem = try Catalog.checkBlob(sha: sha, codecName: codec, rawSize: rawSize, stored: stored, reference: reference) {
                        problems.append(Problem(reference: nil, message: problem))
                    }
                }
            }
            var checked = Set<String>()
            for (id, ref) in entries {
                let (expectedFile, expectedData, size) = try session.query("SELECT sha256, data_hash, size FROM entries WHERE id = $1", [id])[0]
                    .decode((String, String, Int).self)
                let counter = ByteCounter()
                // Tensors shared with an entry already checked need not be re-hashed on their own.
                let blobs = Set(try session.query("SELECT blob FROM entry_tensors WHERE entry_id = $1", [id]).map { try $0.decode(String.self) })
                let fresh = !blobs.isSubset(of: checked)
                let result = try rebuild(entryID: id, checkBlobs: fresh, hashData: true) { counter.count += $0.count }
                checked.formUnion(blobs)
                problems += result.problems.map { Problem(reference: ref, message: $0) }
                if counter.count != size { problems.append(Problem(reference: ref, message: "rebuilt file is \(counter.count) bytes, expected \(size)")) }
                if result.fileHash != expectedFile {
                    problems.append(Problem(reference: ref, message: "rebuilt file hashes to \(result.fileHash.prefix(16))…, expected \(expectedFile.prefix(16))…"))
                }
                if result.dataHash != expectedData {
                    problems.append(Problem(reference: ref, message: "tensor data hashes to \(result.dataHash.prefix(18))…, expected \(expectedData.prefix(18))…"))
                }
                if let header = try session.query("SELECT bytes FROM entry_headers WHERE entry_id = $1", [id]).first {
                    let bytes = Array(try header.decode(ByteBuffer.self).readableBytesView)
                    do { _ = try Catalog.parseHeader(bytes, fileSize: size, name: ref.description) } catch {
                        problems.append(Problem(reference: ref, message: "\(error)"))
                    }
                }
            }
            return problems
        }
    }
}

/// Bytes counted on the rebuild's writer thread.
private final class ByteCounter: @unchecked Sendable {
    var count = 0
}
