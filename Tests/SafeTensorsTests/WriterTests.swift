import Foundation
import Testing
@testable import SafeTensors

struct WriterTests {
    @Test func roundTripAllFloatTypesAndAlignment() throws {
        let path = TestFiles.temporaryFolder().appendingPathComponent("out.safetensors").path
        let values: [Float] = [0, 1, -2.5, 3.140625, 65504, 1e-3]
        let specs = [
            TensorSpec(name: "b", dtype: .bf16, shape: [6]),
            TensorSpec(name: "h", dtype: .f16, shape: [2, 3]),
            TensorSpec(name: "u", dtype: .u8, shape: [3]),
            TensorSpec(name: "f", dtype: .f32, shape: [6]),
            TensorSpec(name: "d", dtype: .f64, shape: [6]),
        ]
        let writer = try SafeTensorsWriter(path: path, metadata: ["k": "v \"quoted\""], tensors: specs)
        // Descending alignment, then name.
        #expect(writer.layout.map(\.name) == ["d", "f", "b", "h", "u"])
        for info in writer.layout {
            if info.dtype == .u8 { try writer.write(info.name, bytes: [7, 8, 9]) } else { try writer.write(info.name, floats: values) }
        }
        try writer.finish()

        let raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(raw[8] == UInt8(ascii: "{"))
        let file = try SafeTensorsFile.open(path)
        #expect(file.header.dataStart % 8 == 0)
        for info in file.tensors { #expect(file.isAligned(info), "\(info.name) is not naturally aligned") }
        #expect(file.metadata == ["k": "v \"quoted\""])
        #expect(try file.floats("f") == values)
        #expect(try file.floats("d") == values)
        #expect(try file.floats("h") == values.map { Float(Float16($0)) })
        #expect(try file.floats("b") == [0, 1, -2.5, 3.140625, 65536, 0.00099945068359375])
        #expect(try file.bytes("u") == [7, 8, 9])
        #expect(try file.info("h").shape == [2, 3])
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(FloatConversion.bfloat16Bits(1.0) == 0x3F80)
        #expect(FloatConversion.bfloat16Bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie → even
        #expect(FloatConversion.bfloat16Bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie → even (up)
        #expect(FloatConversion.bfloat16Bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(Float(bitPattern: UInt32(FloatConversion.bfloat16Bits(.nan)) << 16).isNaN)
    }

    @Test func abandonedWriteLeavesNothing() throws {
        let folder = TestFiles.temporaryFolder()
        let path = folder.appendingPathComponent("out.safetensors").path
        let writer = try SafeTensorsWriter(path: path, metadata: [:], tensors: [TensorSpec(name: "x", dtype: .f32, shape: [1])])
        #expect(throws: SafeTensorsError.self) { try writer.finish() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [])
    }

    @Test func existingFileSurvivesFailedWrite() throws {
        let path = TestFiles.write([1, 2, 3], name: "keep.safetensors")
        do {
            try SafeTensorsWriter.write(to: path, metadata: [:], tensors: [TensorSpec(name: "x", dtype: .f32, shape: [1])]) { _ in
                throw SafeTensorsError(file: path, reason: .writeFailed("simulated"))
            }
            Issue.record("expected the write to fail")
        } catch {}
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1, 2, 3]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent) == ["keep.safetensors"])
    }

    @Test func missingFolderIsAClearError() {
        #expect(throws: SafeTensorsError(file: "/nonexistent-folder/x.safetensors", reason: .writeFailed("folder '/nonexistent-folder' does not exist"))) {
            _ = try SafeTensorsWriter(path: "/nonexistent-folder/x.safetensors", metadata: [:], tensors: [])
        }
    }

    @Test func outOfOrderWriteIsRefused() throws {
        let path = TestFiles.temporaryFolder().appendingPathComponent("o.safetensors").path
        let writer = try SafeTensorsWriter(path: path, metadata: [:], tensors: [
            TensorSpec(name: "a", dtype: .u8, shape: [1]), TensorSpec(name: "b", dtype: .u8, shape: [1]),
        ])
        #expect(throws: SafeTensorsError.self) { try writer.write("b", bytes: [1]) }
        writer.abandon()
    }

    @Test func emptyFileWithMetadataOnly() throws {
        let path = TestFiles.temporaryFolder().appendingPathComponent("m.safetensors").path
        try SafeTensorsWriter.write(to: path, metadata: ["format": "pt"], tensors: []) { _ in [] }
        let file = try SafeTensorsFile.open(path)
        #expect(file.tensors.isEmpty)
        #expect(file.metadata == ["format": "pt"])
    }
}

struct HalfConversionTests {
    /// Halves stored at an odd address decode bit for bit like aligned ones (the two code paths).
    @Test func unalignedHalvesDecodeAlike() {
        let all = (UInt16.min...UInt16.max).map { $0 }
        var bytes: [UInt8] = [0]
        for h in all { bytes += [UInt8(h & 0xFF), UInt8(h >> 8)] }
        let unaligned = bytes.withUnsafeBytes { FloatConversion.toFloat32(UnsafeRawBufferPointer(rebasing: $0[1...]), dtype: .f16, count: all.count) }
        let aligned = all.withUnsafeBytes { FloatConversion.toFloat32($0, dtype: .f16, count: all.count) }
        #expect(unaligned.map(\.bitPattern) == aligned.map(\.bitPattern))
    }

    /// The bit-manipulation conversion agrees with Swift's Float16 on every half value, on the midpoints
    /// between neighbours (ties to even), and on random floats across the whole range.
    @Test func agreesWithFloat16() {
        for bits in UInt16.min...UInt16.max {
            let half = Float16(bitPattern: bits)
            let value = Float(half)
            if half.isNaN {
                #expect(Float16(bitPattern: FloatConversion.halfBits(value)).isNaN)
                #expect(withUnsafeBytes(of: bits) { FloatConversion.toFloat32($0, dtype: .f16, count: 1)[0] }.isNaN)
                continue
            }
            #expect(FloatConversion.halfBits(value) == bits, "\(bits)")
            let decoded = withUnsafeBytes(of: bits) { FloatConversion.toFloat32($0, dtype: .f16, count: 1)[0] }
            #expect(decoded.bitPattern == value.bitPattern, "\(bits)")
            if half.isFinite, !half.nextUp.isInfinite {
                let midpoint = (Double(value) + Double(Float(half.nextUp))) / 2
                let m = Float(midpoint)
                #expect(FloatConversion.halfBits(m) == Float16(m).bitPattern, "midpoint above \(bits)")
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200_000 {
            let value = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))
            if value.isNaN { continue }
            #expect(FloatConversion.halfBits(value) == Float16(value).bitPattern, "\(value)")
        }
    }
}
