import CZlib
import Foundation
import Imaging
import TestSupport
import Testing

/// The committed image fixtures (Fixtures/images, Fixtures/reference/images), found from this file.
enum ImagingFixtures {
    static let root = FixtureFolder.root

    static func input(_ name: String) -> String { root.appendingPathComponent("images/test/\(name)").path }
    static func referencePath(_ name: String) -> String { root.appendingPathComponent("reference/images/\(name)").path }

    /// CRC-32 of Pillow's RGB bytes for every reference PNG (reference/images/index.json).
    static let checksums: [String: UInt32] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: referencePath("index.json")))
        let json = try! JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["rgb_crc32"] as! [String: NSNumber]).mapValues { $0.uint32Value }
    }()

    /// A reference PNG, checked against the checksum of Pillow's pixels before it is used.
    static func reference(_ name: String) throws -> RGBImage {
        let image = try ImageFile.decode(path: referencePath(name)).image
        let crc = image.pixels.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        #expect(crc == checksums[name], "\(name): decoded reference differs from Pillow's pixels")
        return image
    }

    /// Largest per-sample difference in levels (0...255); Int.max when the sizes differ.
    static func maxDifference(_ a: RGBImage, _ b: RGBImage) -> Int {
        guard a.width == b.width, a.height == b.height else { return Int.max }
        return zip(a.pixels, b.pixels).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
    }
}
