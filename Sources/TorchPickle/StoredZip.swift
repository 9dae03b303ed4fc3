/// The entries of a zip archive as `torch.save` writes it: every entry stored (not compressed), found
/// through the central directory. Anything else (compression, encryption, ZIP64, entries outside the
/// file) is refused rather than guessed at.
struct StoredZip {
    let bytes: [UInt8]
    /// Entry name → byte range of its data.
    private(set) var entries: [String: Range<Int>] = [:]

    init(_ bytes: [UInt8]) throws {
        self.bytes = bytes
        // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
        let lowest = max(0, bytes.count - 22 - 65_535)
        guard bytes.count >= 22, let end = stride(from: bytes.count - 22, through: lowest, by: -1).first(where: { u32($0) == 0x0605_4B50 }) else {
            throw TorchPickleError("not a zip archive (no end of central directory)")
        }
        let count = Int(u16(end + 10)), size = Int(u32(end + 12)), start = Int(u32(end + 16))
        guard count != 0xFFFF, size != 0xFFFF_FFFF, start != 0xFFFF_FFFF else {
            throw TorchPickleError("ZIP64 archives (files over 4 GB) are not supported")
        }
        guard start + size <= end else { throw TorchPickleError("the zip central directory lies outside the file") }
        var at = start
        for _ in 0..<count {
            guard at + 46 <= end, u32(at) == 0x0201_4B50 else { throw TorchPickleError("a damaged zip central directory") }
            let flags = u16(at + 8), method = u16(at + 10)
            let compressed = Int(u32(at + 20)), stored = Int(u32(at + 24))
            let nameLength = Int(u16(at + 28)), extraLength = Int(u16(at + 30)), commentLength = Int(u16(at + 32))
            let local = Int(u32(at + 42))
            guard at + 46 + nameLength <= end else { throw TorchPickleError("a damaged zip central directory") }
            let name = String(decoding: bytes[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            guard method == 0, flags & 1 == 0, compressed == stored else {
                throw TorchPickleError("zip entry \(name) is compressed or encrypted; torch.save stores entries uncompressed")
            }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else { throw TorchPickleError("zip entry \(name) has no local header") }
            let dataStart = local + 30 + Int(u16(local + 26)) + Int(u16(local + 28))
            guard dataStart + stored <= bytes.count else { throw TorchPickleError("zip entry \(name) runs past the end of the file") }
            entries[name] = dataStart..<(dataStart + stored)
            at += 46 + nameLength + extraLength + commentLength
        }
    }

    func data(_ name: String) -> ArraySlice<UInt8>? { entries[name].map { bytes[$0] } }

    private func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
    private func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
}
