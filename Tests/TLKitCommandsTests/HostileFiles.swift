import Foundation

/// Files built byte by byte for the hostile-input tests.
enum HostileFiles {
    static let kohyaFixture = CLI.fixture("adapters/kohya/kohya_from_peft.safetensors")

    /// A safetensors image: little-endian header length, the JSON header padded to 8 bytes, the data.
    static func safetensors(_ json: String, data: [UInt8] = []) -> [UInt8] {
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data
    }

    /// A kohya LoRA whose factor data is a hole (reads as zeros, takes no disk): one module per shape
    /// pair, named after SDXL attention projections. Returns the file's length.
    @discardableResult
    static func sparseKohya(_ path: String, factors: [(down: [Int], up: [Int])], dtype: String = "F32") throws -> Int {
        let projections = ["to_q", "to_k", "to_v", "to_out_0"]
        let width = dtype == "F16" ? 2 : 4
        var entries: [String] = []
        var offset = 0
        for (i, pair) in factors.enumerated() {
            let module = "lora_unet_down_blocks_1_attentions_\(i / 4)_transformer_blocks_0_attn1_\(projections[i % 4])"
            for (role, shape) in [("lora_down", pair.down), ("lora_up", pair.up)] {
                let size = shape.reduce(width, *)
                entries.append("\"\(module).\(role).weight\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
                offset += size
            }
        }
        let header = safetensors("{" + entries.joined(separator: ",") + "}")
        FileManager.default.createFile(atPath: path, contents: Data(header))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(header.count + offset))
        try handle.close()
        return header.count + offset
    }

    /// Files of other formats that people hand to tlkit by mistake, and the word the message must use.
    static let foreign: [(name: String, bytes: [UInt8], word: String)] = [
        ("model.ckpt", [0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x05] + Array(repeating: 0x41, count: 64), "pickle"),
        ("model.pt", zip(entry: "archive/data.pkl"), "PyTorch zip"),
        ("pytorch_model.bin", [0x80, 0x04, 0x95, 0x10, 0x00, 0x00, 0x00, 0x00] + Array(repeating: 0x41, count: 64), "pickle"),
        ("bundle.zip", zip(entry: "readme.txt"), "zip archive"),
        ("photo.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0, count: 64), "PNG"),
        ("photo.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + Array(repeating: 0, count: 64), "JPEG"),
        ("model.gguf", Array("GGUF".utf8) + [3, 0, 0, 0] + Array(repeating: 0, count: 64), "GGUF"),
    ]

    /// The start of a zip file whose first entry is `entry` (a local file header, stored, empty).
    static func zip(entry: String) -> [UInt8] {
        let name = Array(entry.utf8)
        var bytes: [UInt8] = [0x50, 0x4B, 0x03, 0x04, 20, 0, 0, 0, 0, 0]
        bytes += Array(repeating: 0, count: 16)                       // time, date, crc, sizes
        bytes += [UInt8(name.count), 0, 0, 0] + name                   // name length, extra length, name
        return bytes + Array(repeating: 0, count: 64)
    }
}
