import Foundation
import SafeTensors
import TestSupport

enum Fixtures {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

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

/// ΔW · v for a row-major [out, in] matrix.
func apply(_ delta: [Float], out: Int, in width: Int, to v: [Float]) -> [Float] {
    (0..<out).map { o in
        var sum = 0.0
        for i in 0..<width { sum += Double(delta[o * width + i]) * Double(v[i]) }
        return Float(sum)
    }
}
