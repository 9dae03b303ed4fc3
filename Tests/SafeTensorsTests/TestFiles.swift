import Foundation
@testable import SafeTensors

/// Builds raw safetensors images by hand, so tests can also write files the writer would refuse.
enum TestFiles {
    static func image(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        var n = declaredLength ?? UInt64(json.count)
        var prefix = [UInt8]()
        for _ in 0..<8 { prefix.append(UInt8(n & 0xFF)); n >>= 8 }
        return prefix + json + data
    }

    static func temporaryFolder() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(_ bytes: [UInt8], name: String = "file.safetensors") -> String {
        let url = temporaryFolder().appendingPathComponent(name)
        try! Data(bytes).write(to: url)
        return url.path
    }

    /// Opens the bytes from disk and returns the error's reason (nil when the file is valid).
    static func reason(_ bytes: [UInt8]) -> SafeTensorsError.Reason? {
        do {
            _ = try SafeTensorsFile.open(write(bytes))
            return nil
        } catch let error as SafeTensorsError {
            return error.reason
        } catch {
            return .cannotOpen("\(error)")
        }
    }
}
