import Foundation
import SafeTensors
import TorchPickle

/// `torch.save` archives (`lora.pt`) given where an adapter is expected: read through the restricted
/// reader (docs/families.md, "Pickles"), never unpickled.
enum TorchInput {
    /// Whether `path` is a regular file that starts like a torch.save zip. Only regular files are sniffed:
    /// reading the head of a pipe would consume what its reader needs.
    static func isArchive(_ path: String) -> Bool {
        var status = stat()
        guard path != "-", stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
              let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: ForeignFormat.sniffLength)) ?? Data())
        return head.starts(with: [0x50, 0x4B, 0x03, 0x04]) && ForeignFormat.isTorchZip(head)
    }

    /// The archive at `path` when it is one; nil for anything else (left to the usual readers and their
    /// messages).
    static func archive(at path: String) throws -> TorchArchive? {
        guard isArchive(path) else { return nil }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        do { return try TorchArchive(bytes: bytes) } catch {
            throw CommandFailure("\(path): a PyTorch zip checkpoint that tlkit cannot read without running it: \(error)")
        }
    }
}
