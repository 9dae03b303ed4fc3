import Foundation
import SafeTensors
import SDXL
import Testing
import TestSupport
@testable import Adapters

/// LoHa and LoKr on convolutions, the Tucker forms (LoCon `lora_mid`, LoHa `hada_t1`/`hada_t2`, LoKr
/// `lokr_t2`), and PEFT's LoHa/LoKr. References: the ΔW LyCORIS' own modules apply in their forward pass
/// (Fixtures/fixturegen/lycoris_families.py; the LyCORIS files also run through FamiliesTests) and PEFT's
/// `get_delta_weight` (peft_families.py), both checked against the layer's forward there.
/// Tolerance: 1e-5 of max|ΔW| (Float32 factors; products here in Float32/Float64, in torch in Float32).
struct ConvFamiliesTests {
    static let peftIDs = ["loha", "loha-effective", "lokr", "lokr-effective"]
    static let tolerance = 1e-5
    static let peftReference = try! SafeTensorsFile.open(Fixtures.path("reference/peft_families_delta.safetensors"))
    static let unetFile = Fixtures.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")

    static func readPEFT(_ id: String) throws -> Adapter {
        try AdapterReader.read(Fixtures.path("adapters/peft-\(id)"))
    }

    /// PEFT's reference ΔW of a module, keyed `<id>/<module path>`.
    static func expectedPEFT(_ id: String, _ module: ModuleInfo) throws -> [Float] {
        try peftReference.floats(peftReference.info("\(id)/\(module.name.dropFirst("unet.".count))"))
    }

    @Test(arguments: peftIDs)
    func peftDeltaMatchesPEFT(_ id: String) throws {
        let adapter = try Self.readPEFT(id)
        #expect(adapter.format == .peft)
        #expect(!adapter.modules.isEmpty)
        for (i, module) in adapter.modules.enumerated() {
            let error = scaleRelative(try adapter.delta(i, at: nil), try Self.expectedPEFT(id, module))
            #expect(error <= Self.tolerance, "\(id) \(module.name): \(error)")
        }
    }

    @Test(arguments: peftIDs)
    func peftConvertsExactlyToKohyaAndPEFT(_ id: String) throws {
        let adapter = try Self.readPEFT(id)
        for format in [OutputFormat.kohya, .peft] {
            let (converted, report) = try Converter.convert(adapter, ConvertRequest(to: format))
            #expect(report.overallError == nil)
            let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
            try AdapterWriter.write(converted, format: format, to: path)
            let back = try AdapterReader.read(path)
            for module in adapter.modules {
                let j = try #require(back.modules.firstIndex { $0.name == module.name })
                #expect(back.modules[j].kernel == module.kernel)
                let error = scaleRelative(try back.delta(j, at: nil), try Self.expectedPEFT(id, module))
                #expect(error <= Self.tolerance, "\(id) → \(format): \(module.name): \(error)")
            }
        }
    }

    /// Ranks are the exact bounds (LoHa r1·r2; LoKr k1·k2, a whole side m × n counting min(m, n); a Tucker
    /// LoCon the core's rank), and every convolution gets its layer's kernel.
    @Test func exactRanksAndKernels() throws {
        /// [rank, in, kh, kw] by the module name's last two parts.
        func facts(_ id: String) throws -> [String: [Int]] {
            let adapter = try FamiliesTests.read(id)
            return Dictionary(uniqueKeysWithValues: adapter.modules.map {
                ($0.name.split(separator: ".").suffix(2).joined(separator: "."), [$0.rank, $0.inFeatures] + $0.kernel)
            })
        }
        let loha = try facts("loha-conv")
        #expect(loha["0.conv1"] == [9, 32 * 9, 3, 3])         // r1 · r2 = 3 · 3, kernel flattened into hada_w1_b
        #expect(loha["0.conv_shortcut"] == [9, 32, 1, 1])
        let lokr = try facts("lokr-conv")
        #expect(lokr["0.conv1"] == [8, 32 * 9, 3, 3])         // whole 4×4 w1 (4) ⊗ w2 = [8, 2]·[2, 8·9] (2)
        #expect(lokr["0.conv_shortcut"] == [8, 32, 1, 1])     // whole 8×4 w1 (4) ⊗ [8, 2]·[2, 8] (2)
        #expect(try facts("lokr-conv-full")["0.conv1"] == [32, 32 * 9, 3, 3])  // whole 4×4 (4) ⊗ whole [8, 8·9] (8)
        #expect(try facts("locon-tucker")["0.conv"] == [4, 32 * 9, 3, 3])
        let lohaTucker = try facts("loha-tucker")
        #expect(lohaTucker["0.conv1"] == [9, 32 * 9, 3, 3])
        #expect(lohaTucker["0.conv_shortcut"] == [9, 32, 1, 1])  // LyCORIS writes no Tucker core for 1×1
        #expect(try facts("lokr-tucker")["0.conv"] == [8, 32 * 9, 3, 3])       // whole 4×4 (4) ⊗ Tucker rank 2
    }

    /// PEFT's LoKr scales by alpha / r even when both sides are whole (LyCORIS then uses 1): the to_q
    /// module, r = 8 from rank_pattern, alpha 3, is whole 8×8 ⊗ whole 8×8, rank 64.
    @Test func peftLoKrKeepsItsScaleWithBothSidesWhole() throws {
        let adapter = try Self.readPEFT("lokr")
        let i = try #require(adapter.modules.firstIndex { $0.name.hasSuffix("attn1.to_q") })
        #expect(adapter.modules[i].rank == 64)
        #expect(adapter.modules[i].kernel == [])
        #expect(scaleRelative(try adapter.delta(i, at: nil), try Self.expectedPEFT("lokr", adapter.modules[i])) <= Self.tolerance)
    }

    /// A converted file stores a convolution as kohya's LoCon does: down [R, Cin, kh, kw], up [Cout, R, 1, 1].
    @Test func convertedConvolutionsAreLoCon() throws {
        let adapter = try FamiliesTests.read("loha-tucker")
        let (converted, _) = try Converter.convert(adapter, ConvertRequest(to: .kohya))
        let path = Fixtures.temporaryFolder().appendingPathComponent("out.safetensors").path
        try AdapterWriter.write(converted, format: .kohya, to: path)
        let file = try SafeTensorsFile.open(path)
        let conv = try #require(file.tensors.first { $0.name.hasSuffix("in_layers_2.lora_down.weight") })
        #expect(conv.shape == [9, 32, 3, 3])
        #expect(file.tensors.first { $0.name.hasSuffix("in_layers_2.lora_up.weight") }?.shape == [64, 9, 1, 1])
        #expect(file.tensors.first { $0.name.hasSuffix("skip_connection.lora_down.weight") }?.shape == [9, 32, 1, 1])
    }

    /// `--rank N` on a Tucker LoHa convolution: the reported error is the tail energy of the reference ΔW's
    /// singular values (full LAPACK SVD).
    @Test func rankTruncationReportsTheError() throws {
        let adapter = try FamiliesTests.read("loha-tucker")
        let (compressed, report) = try Converter.convert(adapter, ConvertRequest(to: .kohya, rank: 3))
        for (i, module) in adapter.modules.enumerated() {
            let delta = try FamiliesTests.expected("loha-tucker", module).map(Double.init)
            let s = FamiliesTests().singularValues(delta, rows: module.outFeatures, cols: module.inFeatures)
            let total = s.reduce(0) { $0 + $1 * $1 }, dropped = s.dropFirst(3).reduce(0) { $0 + $1 * $1 }
            let expected = (dropped / total).squareRoot()
            #expect(expected > 0.01)
            #expect(abs(report.modules[i].relativeError! - expected) <= 1e-5, "\(module.name)")
            #expect(compressed.modules[i].rank == 3)
            #expect(compressed.modules[i].kernel == module.kernel)
        }
    }

    /// Merging two families on the same convolutions: ΔW = 0.7·ΔW(LoHa) − 0.4·ΔW(Tucker LoHa), exactly (concat).
    @Test func mergeAddsTheChanges() throws {
        let a = try FamiliesTests.read("loha-conv"), b = try FamiliesTests.read("loha-tucker")
        let merged = try AdapterMerge.merge([.init(adapter: a, weight: 0.7, label: "a"), .init(adapter: b, weight: -0.4, label: "b")],
                                            method: .concat, rank: nil, atTimestep: nil).adapter
        for (i, module) in merged.modules.enumerated() {
            let ea = try FamiliesTests.expected("loha-conv", module), eb = try FamiliesTests.expected("loha-tucker", module)
            let expected = zip(ea, eb).map { 0.7 * $0 - 0.4 * $1 }
            #expect(module.kernel == a.modules.first { $0.name == module.name }!.kernel)
            let error = scaleRelative(try merged.delta(i, at: nil), expected)
            #expect(error <= Self.tolerance, "\(module.name): \(error)")
        }
    }

    /// `merge --into`: each baked element is the fp16 value nearest W + ΔW (reference ΔW), or its
    /// neighbour where float32 noise straddles a rounding boundary.
    @Test(arguments: ["lokr-tucker", "loha-conv", "locon-tucker"])
    func bakeIntoTheCheckpoint(_ id: String) throws {
        let adapter = try FamiliesTests.read(id)
        let out = Fixtures.temporaryFolder().appendingPathComponent("baked.safetensors").path
        let report = try CheckpointBake.bake([.init(adapter: adapter, weight: 1, label: id)], into: Self.unetFile, output: out, atTimestep: 0)
        #expect(report.applied.count == adapter.modules.count && report.skipped.isEmpty)
        let base = try SDXLModel.open(Self.unetFile), baked = try SDXLModel.open(out)
        for module in adapter.modules {
            let (_, path) = ModuleNames.split(module.name)
            let expected = zip(try base.floats(.unet, path + ".weight"), try FamiliesTests.expected(id, module)).map { $0 + $1 }
            let got = try baked.floats(.unet, path + ".weight")
            #expect(got.count == expected.count)
            var offByOne = 0
            for (g, e) in zip(got, expected) where g != Float(Float16(e)) {
                let nearest = Float16(e)
                #expect(g == Float(nearest.nextUp) || g == Float(nearest.nextDown), "\(id) \(module.name): \(g) vs \(e)")
                offByOne += 1
            }
            #expect(offByOne <= expected.count / 100, "\(id) \(module.name): \(offByOne) elements off by one fp16 step")
        }
    }

    @Test func inspectNamesTheFamilies() throws {
        let expected = ["loha-conv": "loha", "lokr-conv": "lokr", "locon-tucker": "locon", "loha-tucker": "loha", "lokr-tucker": "lokr"]
        for (id, family) in expected {
            let identity = try FileIdentifier.identify(Fixtures.path("adapters/lycoris/\(id).safetensors"))
            #expect(identity.family == family, "\(id)")
            #expect(identity.unsupportedVariant == nil, "\(id)")
        }
        #expect(try FileIdentifier.identify(Fixtures.path("adapters/lycoris/locon-tucker.safetensors")).ranks == [4])
        let peft = try FileIdentifier.identify(Fixtures.path("adapters/peft-loha/adapter_model.safetensors"))
        #expect(peft.family == "loha")
        #expect(peft.format == "peft")
        #expect(peft.ranks.sorted() == [9, 9, 9])
        #expect(peft.alphas.sorted() == [4, 6, 6])   // alpha_pattern gives the 3×3 convolution its own
    }

    /// PEFT keeps alpha and r in adapter_config.json: without it the scale is unknown, and the reader says so.
    @Test func peftWithoutItsConfigIsRefused() throws {
        let folder = Fixtures.temporaryFolder()
        let weights = folder.appendingPathComponent("adapter_model.safetensors").path
        try FileManager.default.copyItem(atPath: Fixtures.path("adapters/peft-lokr/adapter_model.safetensors"), toPath: weights)
        #expect {
            let adapter = try AdapterReader.read(weights)
            _ = try adapter.delta(0, at: nil)
        } throws: { error in
            "\(error)".contains("adapter_config.json")
        }
    }

    /// Malformed Tucker and convolution factors are refused when the header is read, naming the module.
    @Test(arguments: [
        // a core that is not [R, R, kh, kw]
        [("hada_w1_a", [3, 64]), ("hada_w1_b", [3, 32]), ("hada_t1", [3, 3, 3]), ("hada_w2_a", [64, 3]), ("hada_w2_b", [3, 288])],
        // a core whose ranks do not fit its matrices
        [("hada_w1_a", [2, 64]), ("hada_w1_b", [3, 32]), ("hada_t1", [3, 3, 3, 3]), ("hada_w2_a", [64, 3]), ("hada_w2_b", [3, 288])],
        // two Hadamard sides of different widths
        [("hada_w1_a", [3, 64]), ("hada_w1_b", [3, 32]), ("hada_t1", [3, 3, 3, 3]), ("hada_w2_a", [64, 3]), ("hada_w2_b", [3, 32])],
        // a flattened width that is not whole 3×3 windows
        [("hada_w1_a", [64, 3]), ("hada_w1_b", [3, 100]), ("hada_w2_a", [64, 3]), ("hada_w2_b", [3, 100])],
        // a 1×1 kernel shown by the tensors on a 3×3 layer
        [("lokr_w1", [8, 4]), ("lokr_w2", [8, 8, 1, 1])],
        // a Tucker core beside a whole w2
        [("lokr_w1", [8, 4]), ("lokr_w2", [8, 8, 3, 3]), ("lokr_t2", [2, 2, 3, 3])],
        // a LoCon core whose down factor is not 1×1
        [("lora_down.weight", [4, 32, 3, 3]), ("lora_mid.weight", [4, 4, 3, 3]), ("lora_up.weight", [64, 4, 1, 1])],
    ])
    func malformedFactorsAreRefused(_ tensors: [(String, [Int])]) throws {
        let module = "lora_unet_down_blocks_1_resnets_0_conv1"
        let bytes = try SafeTensorsFixture.file(tensors.map { name, shape in
            ("\(module).\(name)", .f32, shape, SafeTensorsFixture.floats([Float](repeating: 0.1, count: shape.reduce(1, *)), .f32))
        })
        let path = Fixtures.temporaryFolder().appendingPathComponent("bad.safetensors").path
        SafeTensorsFixture.write(bytes, to: path)
        #expect {
            _ = try AdapterReader.read(path)
        } throws: { error in
            error is AdapterError && "\(error)".contains(module)
        }
        _ = try FileIdentifier.identify(path)   // inspect still describes the file
    }

    /// A kernel the tensors show must be the layer's; a flattened width must hold whole kernel windows.
    @Test func kernelsThatDoNotFitAreRefused() throws {
        let conv = FamilyShape(family: "loha", rank: 4, outFeatures: 64, inFeatures: 288, kernel: [3, 3])
        #expect(throws: AdapterError.self) {
            _ = try ConvolutionKernels.resolve(conv, canonical: "unet.down_blocks.1.resnets.0.conv_shortcut", base: .sdxl, path: "f", module: "m")
        }
        let flat = FamilyShape(family: "loha", rank: 4, outFeatures: 64, inFeatures: 100)
        #expect(throws: AdapterError.self) {
            _ = try ConvolutionKernels.resolve(flat, canonical: "unet.down_blocks.1.resnets.0.conv1", base: .sdxl, path: "f", module: "m")
        }
        #expect(try ConvolutionKernels.resolve(flat, canonical: "unet.down_blocks.1.attentions.0.proj_in", base: .sdxl, path: "f", module: "m") == [])
        #expect(try ConvolutionKernels.resolve(flat, canonical: "unet.down_blocks.1.attentions.0.proj_in", base: .sd1, path: "f", module: "m") == [1, 1])
    }
}
