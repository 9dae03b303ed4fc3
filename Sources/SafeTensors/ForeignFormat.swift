/// Names files of other formats that are commonly mistaken for safetensors, from their first bytes, so
/// a reader can say "a PyTorch pickle" instead of quoting a nonsensical header length. Only consulted
/// once the 8-byte length prefix has failed its checks (a valid safetensors header length can start
/// with any byte); nothing is parsed beyond the magic numbers, and pickles are never unpickled.
public enum ForeignFormat {
    /// What the file is, or nil when its first bytes match no known format.
    public static func describe(_ head: [UInt8]) -> String? {
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            return isTorchZip(head)
                ? "a PyTorch zip checkpoint (.pt/.pth/.bin/.ckpt), which holds a pickle; tlkit never unpickles (it can run code): `tlkit convert FILE --to kohya` reads a torch.save LoRA without running it"
                : "a zip archive; extract the .safetensors file from it first"
        }
        if head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]) {
            return "a PyTorch pickle file (.ckpt/.pt/.bin); tlkit never unpickles (it can run code): convert it to safetensors first"
        }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "a PNG image" }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) { return "a JPEG image" }
        if head.starts(with: Array("GGUF".utf8)) { return "a GGUF file (llama.cpp quantised weights); tlkit reads safetensors only" }
        return nil
    }

    /// How many leading bytes `describe` needs to tell a torch zip from other zips.
    public static let sniffLength = 128

    /// torch.save's zip files start with an entry named `<archive>/data.pkl` (or `.data/…` for
    /// newer versions); the first local header's name is at offset 30, its length at 26.
    public static func isTorchZip(_ head: [UInt8]) -> Bool {
        guard head.count >= 30 else { return false }
        let nameLength = Int(head[26]) | Int(head[27]) << 8
        let name = String(decoding: head[30..<min(head.count, 30 + nameLength)], as: UTF8.self)
        return name.hasSuffix("data.pkl") || name.contains("/.data/") || name.hasSuffix("/version") || name.contains("/data/")
    }
}
