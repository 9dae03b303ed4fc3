import Testing
import TestSupport
@testable import Catalog

@Suite struct ByteShuffleTests {
    /// Byte-plane shuffle written the obvious way, one byte at a time.
    static func reference(_ bytes: [UInt8], width: Int) -> [UInt8] {
        let n = bytes.count / width
        var out = [UInt8](repeating: 0, count: bytes.count)
        for plane in 0..<width { for i in 0..<n { out[plane * n + i] = bytes[i * width + plane] } }
        return out
    }

    @Test func matchesTheByteByByteDefinitionAndInverts() {
        var r = SplitMix64(seed: 3)
        for width in [2, 4, 8] {
            // Element counts below, at and around the eight-element blocks, and a large odd one.
            for count in [1, 7, 8, 9, 15, 16, 17, 64, 1001, 65_537] {
                let bytes = r.bytes(count * width)
                var shuffled = [UInt8](repeating: 0, count: bytes.count)
                bytes.withUnsafeBytes { s in shuffled.withUnsafeMutableBytes { ByteShuffle.shuffle(s, into: $0, width: width) } }
                #expect(shuffled == Self.reference(bytes, width: width), "shuffle width \(width) × \(count)")
                var back = [UInt8](repeating: 0, count: bytes.count)
                shuffled.withUnsafeBytes { s in back.withUnsafeMutableBytes { ByteShuffle.unshuffle(s, into: $0, width: width) } }
                #expect(back == bytes, "unshuffle width \(width) × \(count)")
            }
        }
    }
}
