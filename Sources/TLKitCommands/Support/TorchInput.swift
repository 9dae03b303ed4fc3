import Foundation
import TorchPickle

/// `torch.save` archives (`lora.pt`) given where an adapter is expected: read through the restricted
/// reader (docs/families.md, "Pickles"), never unpickled.
enum TorchInput {
    /// The archive at `path` when the file is a zip; nil for anything else (left to the usual readers).
    static func archive(at path: String) throws -> TorchArchive? {
        var isDirectory: ObjCBool = false
        guard path != "-", FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard TorchArchive.looksLikeZip(try handle.read(upToCount: 4) ?? Data()) else { return nil }
        try handle.seek(toOffset: 0)
        let bytes = [UInt8](try handle.readToEnd() ?? Data())
        do { return try TorchArchive(bytes: bytes) } catch { throw CommandFailure("\(path): \(error)") }
    }
}
