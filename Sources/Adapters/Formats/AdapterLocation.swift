import Foundation

/// Adapter folders are accepted where files are: a training folder (newest `checkpoint-N/`), a
/// `checkpoint-N/` folder, a PEFT folder, or any folder holding exactly one `.safetensors` file.
public enum AdapterLocation {
    static let knownNames = ["adapter.safetensors", "pytorch_lora_weights.safetensors", "adapter_model.safetensors"]

    /// The adapter file a path stands for (the path itself for files and `-`).
    public static func resolve(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard path != "-", FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return path
        }
        let fm = FileManager.default
        for name in knownNames {
            let candidate = (path as NSString).appendingPathComponent(name)
            if fm.fileExists(atPath: candidate) { return candidate }
        }
        let listing = (try? fm.contentsOfDirectory(atPath: path)) ?? []
        let checkpoints = listing.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-"), let n = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            return (n, name)
        }.sorted { $0.0 > $1.0 }
        for (_, name) in checkpoints {
            if let file = resolve((path as NSString).appendingPathComponent(name)), file.hasSuffix(".safetensors") { return file }
        }
        let files = listing.filter { $0.hasSuffix(".safetensors") }
        return files.count == 1 ? (path as NSString).appendingPathComponent(files[0]) : nil
    }

    /// Whether the folder looks like an adapter folder rather than a model.
    public static func isAdapterFolder(_ path: String) -> Bool {
        guard let file = resolve(path) else { return false }
        return file != path
    }
}
