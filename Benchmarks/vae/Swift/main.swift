// The Swift side of the VAE benchmark (Benchmarks/vae/run.sh).
//
//   tlkit-vae-bench time VAE SIZE [RUNS]   encode / decode of one SIZE² image: best of RUNS seconds
//   tlkit-vae-bench check VAE REFERENCE    scale-relative error against vae_torch.py's `reference` output
// THREADS sets the thread count (Engine loops and OpenBLAS).
import CMalloc
import Engine
import Foundation
import SafeTensors
import VAE

func smoothImage(size: Int) -> Tensor<Float> {
    // Same role as the PyTorch side's input (smooth, in [−1, 1]); timing does not depend on the values.
    Tensor(shape: [1, 3, size, size]) { i in
        let x = Float(i % size) / Float(size), y = Float((i / size) % size) / Float(size), c = Float(i / (size * size))
        return tanh(1.5 * sin(6 * x + 2 * c) * cos(5 * y - c))
    }
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func scaleRelative(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Double {
    var diff = 0.0, scale = 0.0
    for i in 0..<b.count {
        diff = max(diff, abs(Double(a[i]) - Double(b[i])))
        scale = max(scale, abs(Double(b[i])))
    }
    return a.shape == b.shape ? diff / scale : .infinity
}

let args = CommandLine.arguments
// The malloc settings of tlkit's entry point, so the driver allocates as the command line tool does.
_ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
_ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
if let threads = ProcessInfo.processInfo.environment["THREADS"].flatMap({ Int($0) }) { Parallel.threads = threads }
do {
    switch (args.count > 1 ? args[1] : "", args.count) {
    case ("time", 4...5):
        let vae = try AutoencoderKL(path: args[2])
        let size = Int(args[3]) ?? 1024, runs = args.count > 4 ? Int(args[4]) ?? 2 : 2
        let image = smoothImage(size: size)
        var encode = Double.infinity, decode = Double.infinity
        for _ in 0..<runs {
            var latents = Tensor<Float>(zeros: [0])
            encode = min(encode, try seconds { latents = try vae.encode(images: image).mean })
            decode = min(decode, try seconds { _ = try vae.decode(latents: latents) })
        }
        print(String(format: "encode %.2f\ndecode %.2f", encode, decode))
    case ("check", 4):
        let vae = try AutoencoderKL(path: args[2])
        let file = try SafeTensorsFile.open(args[3])
        func tensor(_ name: String) throws -> Tensor<Float> {
            let info = try file.info(name)
            return Tensor(shape: info.shape, values: try file.floats(info))
        }
        let mean = try vae.encode(images: tensor("images")).mean
        let decoded = try vae.decode(latents: tensor("latents"))
        print(String(format: "mean %.2e\ndecoded %.2e", scaleRelative(mean, try tensor("mean")),
                     scaleRelative(decoded, try tensor("decoded"))))
    default:
        FileHandle.standardError.write(Data("usage: tlkit-vae-bench time VAE SIZE [RUNS] | check VAE REFERENCE\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("tlkit-vae-bench: \(error)\n".utf8))
    exit(1)
}
