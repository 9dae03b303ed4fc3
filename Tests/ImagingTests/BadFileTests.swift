import Foundation
import Imaging
import Testing

/// Corrupt, truncated and non-image files give one-line errors naming the file; nothing aborts.
@Suite struct BadFileTests {
    @Test(arguments: ["truncated.jpg", "corrupt.png", "truncated.png"])
    func corruptFilesAreRefused(name: String) throws {
        let path = ImagingFixtures.input(name)
        let error = try #require(throws: ImageError.self) { try ImageFile.decode(path: path) }
        print("\(name): \(error)")
        guard case .corrupt = error.reason else { Issue.record("\(name): \(error.reason)"); return }
        #expect(error.description.hasPrefix(path))
        #expect(!error.description.contains("\n"))
    }

    @Test(arguments: [("tiny.gif", "GIF"), ("tiny.webp", "WebP"), ("not-an-image.txt", "not a JPEG or PNG")])
    func otherFormatsAreNamed(name: String, what: String) throws {
        let path = ImagingFixtures.input(name)
        let error = try #require(throws: ImageError.self) { try ImageFile.decode(path: path) }
        guard case .unsupportedFormat = error.reason else { Issue.record("\(name): \(error.reason)"); return }
        #expect(error.description.contains(path) && error.description.contains(what), "\(error)")
    }

    /// The format comes from the bytes: a PNG named .jpg still decodes as PNG.
    @Test func extensionIsIgnored() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: ImagingFixtures.input("rgb.png")))
        let decoded = try ImageFile.decode(data: [UInt8](bytes), name: "misnamed.jpg")
        #expect(decoded.format == .png)
    }

    @Test func missingFileAndFolder() throws {
        let missing = try #require(throws: ImageError.self) { try ImageFile.decode(path: "/nonexistent/x.png") }
        guard case .cannotOpen = missing.reason else { Issue.record("\(missing.reason)"); return }
        let folder = try #require(throws: ImageError.self) { try ImageFile.decode(path: ImagingFixtures.input("")) }
        guard case .cannotOpen = folder.reason else { Issue.record("\(folder.reason)"); return }
        let empty = try #require(throws: ImageError.self) { try ImageFile.decode(data: [], name: "empty.png") }
        guard case .unsupportedFormat = empty.reason else { Issue.record("\(empty.reason)"); return }
    }

    /// Every prefix of a valid JPEG and PNG, and random byte flips, end in an error or an image — never a crash.
    @Test func damagedBytesNeverAbort() throws {
        for name in ["photo-orient6.jpg", "palette-trns.png"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ImagingFixtures.input(name))))
            for length in stride(from: 0, to: bytes.count, by: 37) {
                _ = try? ImageFile.decode(data: Array(bytes[..<length]))
            }
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            for _ in 0..<200 {
                var damaged = bytes
                for _ in 0..<3 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let at = 8 + Int((state >> 33) % UInt64(bytes.count - 8))
                    damaged[at] ^= UInt8(truncatingIfNeeded: state >> 20) | 1
                }
                _ = try? ImageFile.decode(data: damaged)
            }
        }
    }
}
