import Crypto
import Foundation
@testable import Catalog
import SafeTensors

/// Deterministic pseudo-random numbers (SplitMix64) and roughly normal floats (Box–Muller).
struct Random {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) + 1e-7 }

    mutating func normal(count: Int, scale: Float = 0.02) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(count)
        while out.count < count {
            let r = (-2 * log(uniform())).squareRoot(), t = 2 * Float.pi * uniform()
            out.append(r * cos(t) * scale)
            if out.count < count { out.append(r * sin(t) * scale) }
        }
        return out
    }

    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

enum Fixture {
    static func folder() -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-catalog-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// A raw safetensors image from header JSON text and data, exactly as given (any order, padding).
    static func image(header: String, data: [UInt8]) -> [UInt8] {
        let json = Array(header.utf8)
        var n = UInt64(json.count), prefix = [UInt8]()
        for _ in 0..<8 { prefix.append(UInt8(n & 0xFF)); n >>= 8 }
        return prefix + json + data
    }

    /// A file written by tlkit's writer: tensors (name, dtype, shape, bytes) and metadata.
    static func file(_ tensors: [(String, DType, [Int], [UInt8])], metadata: [String: String] = [:]) throws -> [UInt8] {
        let specs = tensors.map { TensorSpec(name: $0.0, dtype: $0.1, shape: $0.2) }
        let (header, layout) = try SafeTensorsWriter.header(metadata: metadata, tensors: specs)
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.0, $0.3) })
        return header + layout.flatMap { byName[$0.name]! }
    }

    static func floats(_ values: [Float], _ dtype: DType) -> [UInt8] { FloatConversion.fromFloat32(values, dtype: dtype) }

    static func write(_ bytes: [UInt8], to path: String) { try! Data(bytes).write(to: URL(fileURLWithPath: path)) }

    static func sha256(_ bytes: [UInt8]) -> String { Hashing.sha256Bytes(bytes) }

    static func sha256(file path: String) -> String { sha256([UInt8](try! Data(contentsOf: URL(fileURLWithPath: path)))) }

    /// A T-LoRA-like "checkpoint": frozen base tensors from `baseSeed`, trainable ones drifting with `step`.
    static func checkpoint(step: Int, modules: Int = 8, rank: Int = 16, width: Int = 256, dtype: DType = .f32) throws -> [UInt8] {
        var tensors: [(String, DType, [Int], [UInt8])] = []
        for m in 0..<modules {
            var base = Random(seed: UInt64(1000 + m))
            let q0 = base.normal(count: rank * width), p0 = base.normal(count: width * rank), l0 = base.normal(count: rank, scale: 1)
            var drift = Random(seed: UInt64(7_000_000 + m * 100 + step))
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

extension Hashing {
    static func sha256Bytes(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { sha256($0) } }
}

/// The helper executable that runs the catalog commands (built with the tests).
enum Helper {
    static var path: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On some layouts the test runner sits inside a bundle folder.
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("tlkit-catalog-helper").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return "tlkit-catalog-helper"
    }

    static func start(_ arguments: [String], stdout: FileHandle? = nil, stderr: FileHandle? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = stdout ?? FileHandle.nullDevice
        process.standardError = stderr ?? FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs the helper to completion; returns the exit status, stdout and stderr.
    static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String, bytes: [UInt8]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self), [UInt8](outData))
    }
}
