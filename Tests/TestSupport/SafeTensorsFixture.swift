import Crypto
import Foundation
import SafeTensors

/// Safetensors files built in memory for tests: exact bytes, written by tlkit's writer or given raw.
public enum SafeTensorsFixture {
    /// A fresh temporary folder.
    public static func folder() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// A raw safetensors image from header JSON text and data, exactly as given (any order, padding).
    public static func image(header: String, data: [UInt8]) -> [UInt8] {
        let json = Array(header.utf8)
        var n = UInt64(json.count), prefix = [UInt8]()
        for _ in 0..<8 { prefix.append(UInt8(n & 0xFF)); n >>= 8 }
        return prefix + json + data
    }

    /// A file written by tlkit's writer: tensors (name, dtype, shape, bytes) and metadata.
    public static func file(_ tensors: [(String, DType, [Int], [UInt8])], metadata: [String: String] = [:]) throws -> [UInt8] {
        let specs = tensors.map { TensorSpec(name: $0.0, dtype: $0.1, shape: $0.2) }
        let (header, layout) = try SafeTensorsWriter.header(metadata: metadata, tensors: specs)
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.0, $0.3) })
        return header + layout.flatMap { byName[$0.name]! }
    }

    public static func floats(_ values: [Float], _ dtype: DType) -> [UInt8] { FloatConversion.fromFloat32(values, dtype: dtype) }

    public static func write(_ bytes: [UInt8], to path: String) { try! Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// SHA-256 in lowercase hex, computed here rather than by the code under test.
    public static func sha256<D: DataProtocol>(_ bytes: D) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    public static func sha256(file path: String) -> String { sha256([UInt8](try! Data(contentsOf: URL(fileURLWithPath: path)))) }

    /// A T-LoRA-like "checkpoint": frozen base tensors from a fixed seed, trainable ones drifting with `step`.
    public static func checkpoint(step: Int, modules: Int = 8, rank: Int = 16, width: Int = 256, dtype: DType = .f32) throws -> [UInt8] {
        var tensors: [(String, DType, [Int], [UInt8])] = []
        for m in 0..<modules {
            var base = SplitMix64(seed: UInt64(1000 + m))
            let q0 = base.normal(count: rank * width), p0 = base.normal(count: width * rank), l0 = base.normal(count: rank, scale: 1)
            var drift = SplitMix64(seed: UInt64(7_000_000 + m * 100 + step))
            let q = zip(q0, drift.normal(count: q0.count, scale: 0.0005 * Float(step))).map { $0 + $1 }
            let p = zip(p0, drift.normal(count: p0.count, scale: 0.0005 * Float(step))).map { $0 + $1 }
            let prefix = "unet.block\(m).attn.to_q.tlora"
            tensors += [("\(prefix).q0", dtype, [rank, width], floats(q0, dtype)),
                        ("\(prefix).p0", dtype, [width, rank], floats(p0, dtype)),
                        ("\(prefix).lambda0", dtype, [rank], floats(l0, dtype)),
                        ("\(prefix).q", dtype, [rank, width], floats(q, dtype)),
                        ("\(prefix).p", dtype, [width, rank], floats(p, dtype)),
                        ("\(prefix).lambda", dtype, [rank], floats(l0, dtype))]
        }
        return try file(tensors, metadata: ["tlora.method": "ortho", "tlora.max_rank": "\(rank)", "tlora.steps": "\(step * 100)"])
    }
}
