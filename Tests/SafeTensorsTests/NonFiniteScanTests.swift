import Foundation
import Testing
@testable import SafeTensors

struct NonFiniteScanTests {
    /// One non-finite value anywhere in a tensor longer than a scan chunk is found, in every float dtype;
    /// the largest finite values of each dtype are not flagged.
    @Test(arguments: [DType.f16, .bf16, .f32, .f64])
    func findsEachNonFiniteValue(dtype: DType) throws {
        let count = 40_000
        let largest: Float = dtype == .f16 ? 65504 : dtype == .bf16 ? Float(bitPattern: 0x7F7F_0000) : .greatestFiniteMagnitude
        var values = (0..<count).map { Float($0 % 97) - 48 }
        values[5] = largest
        values[6] = -largest
        let clean = try scan(values, dtype: dtype)
        #expect(!clean)
        for bad: Float in [.nan, .infinity, -.infinity] {
            for position in [0, 16_383, 16_384, count - 1] {
                var dirty = values
                dirty[position] = bad
                #expect(try scan(dirty, dtype: dtype), "\(dtype) \(bad) at \(position)")
            }
        }
    }

    /// Tensors whose data is not aligned to their element size (legal in safetensors) take the unaligned path.
    @Test func misalignedTensorIsScanned() throws {
        for (value, expected) in [(Float(1.5), false), (.nan, true)] {
            var data = [UInt8]()
            for v in [Float(2), value, Float(-3)] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
            // Trailing spaces in the JSON push the data section to an odd offset.
            var header = #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#
            while (8 + header.utf8.count) % 4 != 1 { header += " " }
            let file = try SafeTensorsFile.open(TestFiles.write(TestFiles.image(header: header, data: data)))
            let info = try #require(file.header.tensor(named: "t"))
            #expect(!file.isAligned(info))
            #expect(file.containsNonFinite(info) == expected)
        }
    }

    private func scan(_ values: [Float], dtype: DType) throws -> Bool {
        let path = TestFiles.temporaryFolder().appendingPathComponent("scan.safetensors").path
        try SafeTensorsWriter.write(to: path, metadata: [:], tensors: [TensorSpec(name: "t", dtype: dtype, shape: [values.count])]) { _ in
            FloatConversion.fromFloat32(values, dtype: dtype)
        }
        let file = try SafeTensorsFile.open(path)
        return file.containsNonFinite(try #require(file.header.tensor(named: "t")))
    }
}
