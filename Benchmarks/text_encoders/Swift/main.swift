// The Swift side of the text-encoder benchmark (Benchmarks/text_encoders/run.sh).
//
//   tlkit-te-bench CHECKPOINT PROMPT [RUNS]
//
// Opens an SDXL checkpoint, builds both text encoders (single files use tlkit's default vocabulary) and
// times SDXL's conditioning of one prompt: penultimate states of both encoders [1, 77, 2048] and the pooled
// embedding [1, 1280]. Prints `load SECONDS`, `encode SECONDS` (best of RUNS after one warm-up) and the
// outputs as `context`/`pooled` lines of values for te_torch.py's comparison.
// THREADS sets the thread count (Engine loops and OpenBLAS).
import CMalloc
import Engine
import Foundation
import SDXL
import TextEncoders

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// One line: the name, then every value (%.9g, enough to round-trip a Float).
func valuesLine(_ name: String, _ tensor: Tensor<Float>) -> String {
    var line = name
    for i in 0..<tensor.count { line += String(format: " %.9g", tensor[i]) }
    return line
}

let args = CommandLine.arguments
// The malloc settings of tlkit's entry point, so the driver allocates as the command line tool does.
_ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
_ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
if let threads = ProcessInfo.processInfo.environment["THREADS"].flatMap({ Int($0) }) { Parallel.threads = threads }
guard (3...4).contains(args.count) else {
    FileHandle.standardError.write(Data("usage: tlkit-te-bench CHECKPOINT PROMPT [RUNS]\n".utf8))
    exit(2)
}
do {
    let prompt = args[2], runs = args.count > 3 ? max(1, Int(args[3]) ?? 3) : 3
    var encoders: SDXLTextEncoders?
    let load = try seconds { encoders = try SDXLTextEncoders(model: SDXLModel.open(args[1])) }
    guard let encoders else { exit(1) }
    var output = try encoders.conditioning(prompt)  // warm-up
    var encode = Double.infinity
    for _ in 0..<runs { encode = min(encode, try seconds { output = try encoders.conditioning(prompt) }) }
    print(String(format: "load %.2f\nencode %.3f", load, encode))
    print(valuesLine("context", output.context))
    print(valuesLine("pooled", output.pooled))
} catch {
    FileHandle.standardError.write(Data("tlkit-te-bench: \(error)\n".utf8))
    exit(1)
}
