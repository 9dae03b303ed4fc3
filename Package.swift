// swift-tools-version:6.0
import PackageDescription

// Library targets mirror the architecture (see README "Architecture"); the executable is a thin entry point.
var package = Package(
    name: "tlkit",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tlkit", targets: ["tlkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // System libraries, each wrapped by a tiny module map.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),

        // The SIGBUS guard for mapped inputs (a signal handler, so C).
        .target(name: "CMappedGuard", path: "Sources/CMappedGuard"),
        // The fused bf16 attention kernel (AVX-512 BF16 intrinsics, so C).
        .target(name: "CAttention", path: "Sources/CAttention"),
        // JSON output: one writer for headers, reports and listings (the safetensors parser reads into its values).
        .target(name: "JSONOutput"),
        .target(name: "SafeTensors", dependencies: ["CMappedGuard", "JSONOutput"]),
        // torch.save archives read as data, never executed.
        .target(name: "TorchPickle", dependencies: ["SafeTensors"]),
        // OpenBLAS's process-wide thread count, changed in one place (serial sections may overlap).
        .target(name: "BLASThreads", dependencies: ["CBLAS"]),
        .target(name: "Engine", dependencies: ["CBLAS", "BLASThreads", "CDNNL", "CAttention", "CMalloc"]),
        .target(name: "Tokenizer", dependencies: ["CZlib"], resources: [.copy("Resources")]),
        .target(name: "SDXL", dependencies: ["SafeTensors"]),
        // SHA-256 digests spelled once (lowercase hex) for every target that writes or compares one.
        .target(name: "DigestHex", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Adapters", dependencies: [
            "SafeTensors", "SDXL", "CBLAS", "BLASThreads", "DigestHex",
            .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "UNet", dependencies: ["Engine", "SDXL", "Adapters"]),
        .target(name: "TextEncoders", dependencies: ["Engine", "SDXL", "Tokenizer"]),
        .target(name: "Imaging", dependencies: ["CPNG", "CJPEG", "SafeTensors"]),
        .target(name: "VAE", dependencies: ["Engine", "SDXL", "SafeTensors"]),
        .target(name: "Training", dependencies: [
            "Engine", "UNet", "Adapters", "SafeTensors", "SDXL", "TextEncoders", "VAE", "Imaging", "CBLAS", "DigestHex",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Sampling", dependencies: ["Engine", "SafeTensors", "SDXL", "Adapters", "UNet", "TextEncoders", "VAE"]),
        .target(name: "Catalog", dependencies: [
            "SafeTensors", "CZstd", "DigestHex",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ]),
        .target(name: "TLKitCommands", dependencies: [
            "SafeTensors", "JSONOutput", "SDXL", "Adapters", "TorchPickle", "Catalog", "CMalloc", "Engine", "UNet", "TextEncoders", "VAE", "Imaging", "Training", "Sampling",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "tlkit", dependencies: ["TLKitCommands"]),
        // Benchmark drivers (not installed): Benchmarks/*/run.sh call them.
        .executableTarget(name: "tlkit-vae-bench", dependencies: ["VAE", "Engine", "SafeTensors", "CMalloc"], path: "Benchmarks/vae/Swift"),
        .executableTarget(name: "tlkit-te-bench", dependencies: ["TextEncoders", "SDXL", "Engine", "CMalloc"],
                          path: "Benchmarks/text_encoders/Swift"),

        // What several test targets share: fixture paths, the scale-relative error, SplitMix64, safetensors builders.
        .target(name: "TestSupport", dependencies: ["Engine", "SafeTensors", .product(name: "Crypto", package: "swift-crypto")],
                path: "Tests/TestSupport"),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "JSONOutput"]),
        .testTarget(name: "TorchPickleTests", dependencies: ["TorchPickle", "SafeTensors", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "BLASThreads", "CBLAS", "TestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "TestSupport"]),
        .testTarget(name: "SDXLTests", dependencies: ["SDXL", "SafeTensors", "TestSupport"]),
        .testTarget(name: "UNetTests", dependencies: ["UNet", "Engine", "SDXL", "Adapters", "SafeTensors", "TestSupport"]),
        .testTarget(name: "TextEncodersTests", dependencies: ["TextEncoders", "Engine", "SDXL", "SafeTensors", "Tokenizer", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: [
            "Training", "CBLAS", "UNet", "Engine", "SDXL", "Adapters", "SafeTensors", "VAE", "Imaging", "TextEncoders", "TestSupport",
        ]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "CZlib", "TestSupport"]),
        .testTarget(name: "VAETests", dependencies: ["VAE", "Engine", "SDXL", "SafeTensors", "TestSupport"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "UNet", "Engine", "SDXL", "Adapters", "SafeTensors", "TextEncoders", "TestSupport"]),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "SafeTensors", "CBLAS", "TorchPickle", "TestSupport"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "SafeTensors", "TestSupport"]),
        .testTarget(name: "TLKitCommandsTests", dependencies: [
            "TLKitCommands", "tlkit", "Catalog", "JSONOutput", "SafeTensors", "Engine", "Imaging", "TestSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "GRDB", package: "GRDB.swift"),
        ]),
    ]
)

// The libFuzzer target links libFuzzer's own `main`, so it exists only in fuzzing builds (Fuzz/run.sh).
if Context.environment["TLKIT_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "tlkit-fuzz", dependencies: ["Adapters"], path: "Fuzz/tlkit-fuzz"))
    package.targets.append(.executableTarget(name: "tlkit-fuzz-adapters", dependencies: ["Adapters"], path: "Fuzz/tlkit-fuzz-adapters"))
    package.targets.append(.executableTarget(name: "tlkit-fuzz-catalog", dependencies: ["Catalog"], path: "Fuzz/tlkit-fuzz-catalog"))
}
