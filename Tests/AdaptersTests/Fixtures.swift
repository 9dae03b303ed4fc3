import Foundation
import SafeTensors

enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// Adapter fixtures by the id the reference file uses.
    static let adapters: [String: String] = [
        "peft": "adapters/peft/pytorch_lora_weights.safetensors",
        "peft-flat-te": "adapters/peft-flat-te/pytorch_lora_weights.safetensors",
        "kohya": "adapters/kohya/kohya_from_peft.safetensors",
        "attn-procs": "adapters/attn-procs/pytorch_lora_weights.safetensors",
        "official-ortho": "adapters/official-ortho",
        "official-vanilla": "adapters/official-vanilla",
    ]

    static let deltas = try! SafeTensorsFile.open(path("reference/adapters_delta.safetensors"))

    static func temporaryFolder() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-adapters-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// docs/contract.md, "Tolerances": max|a − b| ≤ tol · max|b|.
func scaleRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    let scale = b.map { Double(abs($0)) }.max() ?? 0
    let worst = zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0
    return scale == 0 ? worst : worst / scale
}

/// ΔW · v for a row-major [out, in] matrix.
func apply(_ delta: [Float], out: Int, in width: Int, to v: [Float]) -> [Float] {
    (0..<out).map { o in
        var sum = 0.0
        for i in 0..<width { sum += Double(delta[o * width + i]) * Double(v[i]) }
        return Float(sum)
    }
}
