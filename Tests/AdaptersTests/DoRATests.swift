import Foundation
import SafeTensors
import SDXL
import Testing
import TestSupport
@testable import Adapters

/// DoRA modules baked into a checkpoint (docs/families.md, "DoRA"). References: PEFT's own merge of its
/// DoRA layers (Fixtures/fixturegen/dora.py) and LyCORIS' DoRA forward (lycoris_families.py), both in
/// float32 on the fp16 tiny SDXL UNet upcast to float32.
struct DoRATests {
    static let peftPath = Fixtures.path("adapters/dora")
    static let lycorisPath = Fixtures.path("adapters/lycoris/dora.safetensors")
    static let unetFile = Fixtures.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")
    static let singleFile = Fixtures.path("models/tiny-sdxl.safetensors")
    static let peftMerged = try! SafeTensorsFile.open(Fixtures.path("reference/dora_merged.safetensors"))
    static let lycorisDelta = try! SafeTensorsFile.open(Fixtures.path("reference/families_delta.safetensors"))

    /// W' = m/‖W + s·BA‖ ⊙ (W + s·BA) in float64 against PEFT's float32 merge: 1e-5 of max|W'|.
    @Test func mergedWeightEqualsPEFTsMerge() throws {
        let adapter = try AdapterReader.read(Self.peftPath, acceptDoRA: true)
        #expect(adapter.modules.count == 3)
        #expect(adapter.modules.allSatisfy { $0.magnitudeAxis == .output })
        #expect(adapter.modules.contains { $0.kernel == [3, 3] })
        let base = try SDXLModel.open(Self.unetFile)
        for (i, module) in adapter.modules.enumerated() {
            let (_, path) = ModuleNames.split(module.name)
            let w = try base.floats(.unet, path + ".weight")
            let merged = DoRA.merged(w, try #require(try adapter.dora(i)))
            let expected = try Self.peftMerged.floats(Self.peftMerged.info(module.name + ".weight"))
            let error = scaleRelative(merged.map(Float.init), expected)
            #expect(error <= 1e-5, "\(module.name): \(error)")
        }
    }

    /// Baked into the fp16 checkpoints (diffusers UNet file and single file): each element is the fp16
    /// value nearest the reference, or its neighbour when the reference lies within float32 noise of a
    /// rounding boundary.
    @Test(arguments: [unetFile, singleFile])
    func bakeMatchesPEFTAndLyCORIS(_ checkpoint: String) throws {
        let peft = try AdapterReader.read(Self.peftPath, acceptDoRA: true)
        let lycoris = try AdapterReader.read(Self.lycorisPath, acceptDoRA: true)
        #expect(lycoris.modules.map(\.magnitudeAxis) == [.output])
        let base = try SDXLModel.open(checkpoint)
        for (adapter, reference) in [(peft, "peft"), (lycoris, "lycoris")] {
            let out = Fixtures.temporaryFolder().appendingPathComponent("baked.safetensors").path
            let report = try CheckpointBake.bake([.init(adapter: adapter, weight: 1, label: reference)], into: checkpoint, output: out, atTimestep: 0)
            #expect(report.applied.count == adapter.modules.count && report.skipped.isEmpty)
            let baked = try SDXLModel.open(out)
            for module in adapter.modules {
                let (_, path) = ModuleNames.split(module.name)
                let expected: [Float]
                if reference == "peft" {
                    expected = try Self.peftMerged.floats(Self.peftMerged.info(module.name + ".weight"))
                } else {
                    // LyCORIS' reference is ΔW = W' − W.
                    let delta = try Self.lycorisDelta.floats(Self.lycorisDelta.info("dora/lora_unet_" + path.replacingOccurrences(of: ".", with: "_")))
                    expected = zip(try base.floats(.unet, path + ".weight"), delta).map { $0 + $1 }
                }
                let steps = halfRoundingSteps(try baked.floats(.unet, path + ".weight"), expected)
                #expect(steps.farther == 0, "\(reference) \(module.name): \(steps.farther) elements not the nearest fp16 or its neighbour")
                #expect(steps.oneStep <= expected.count / 100, "\(reference) \(module.name): \(steps.oneStep) elements off by one fp16 step")
            }
        }
    }

    /// Stacked with a LoRA on the same layer, DoRA rescales the weight the LoRA left (listed after it), and
    /// a weight w blends: W + w·(W' − W).
    @Test func stackingAppliesInCommandLineOrder() throws {
        let lora = try AdapterReader.read(Fixtures.path(Fixtures.adapters["kohya"]!))
        let dora = try AdapterReader.read(Self.peftPath, acceptDoRA: true)
        let target = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
        let l = try #require(lora.modules.firstIndex { $0.name == target }), d = try #require(dora.modules.firstIndex { $0.name == target })
        let folder = Fixtures.temporaryFolder()
        let first = folder.appendingPathComponent("lora-then-dora.safetensors").path
        let second = folder.appendingPathComponent("dora-then-lora.safetensors").path
        _ = try CheckpointBake.bake([.init(adapter: lora, weight: 1, label: "lora"), .init(adapter: dora, weight: 0.5, label: "dora")],
                                    into: Self.unetFile, output: first, atTimestep: 0)
        _ = try CheckpointBake.bake([.init(adapter: dora, weight: 0.5, label: "dora"), .init(adapter: lora, weight: 1, label: "lora")],
                                    into: Self.unetFile, output: second, atTimestep: 0)
        let w = try SDXLModel.open(Self.unetFile).floats(.unet, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight")
        let delta = try lora.delta(l, at: nil)
        let factors = try #require(try dora.dora(d))
        // LoRA first: DoRA sees W + ΔW.
        let w1 = zip(w, delta).map { $0 + $1 }
        let m1 = DoRA.merged(w1, factors)
        let expectedFirst = zip(w1, m1).map { Float(Float16(Float(Double($0) + 0.5 * ($1 - Double($0))))) }
        // DoRA first: the LoRA's ΔW is added to the blended weight.
        let m2 = DoRA.merged(w, factors)
        let expectedSecond = zip(zip(w, m2).map { Float(Double($0) + 0.5 * ($1 - Double($0))) }, delta).map { Float(Float16($0 + $1)) }
        let gotFirst = try SDXLModel.open(first).floats(.unet, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight")
        let gotSecond = try SDXLModel.open(second).floats(.unet, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight")
        #expect(gotFirst == expectedFirst)
        #expect(gotSecond == expectedSecond)
        #expect(gotFirst != gotSecond, "the order matters")
    }

    /// Without the base weights, a DoRA file is refused, naming a module and what can apply it.
    @Test func readersRefuseDoRAWithoutTheBase() throws {
        for (path, module) in [(Self.peftPath, "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"),
                               (Self.lycorisPath, "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q")] {
            #expect {
                _ = try AdapterReader.read(path)
            } throws: { error in
                "\(error)".contains("module \(module) is a DoRA module") && "\(error)".contains("merge --into")
            }
        }
        // Read for baking, its modules still refuse to be taken for LoRA factors.
        let adapter = try AdapterReader.read(Self.peftPath, acceptDoRA: true)
        #expect(throws: AdapterError.self) { _ = try adapter.delta(0, at: nil) }
        #expect(throws: AdapterError.self) { _ = try Converter.convert(adapter, ConvertRequest(to: .kohya)) }
        #expect(throws: AdapterError.self) { _ = try AdapterMerge.merge([.init(adapter: adapter, weight: 1, label: "dora")], method: .concat, rank: nil, atTimestep: nil) }
    }

    /// `convert --base --rank N`: each DoRA module's ΔW = W' − W (W' from PEFT's merge) as a rank-N LoRA.
    /// At full rank it is exact (1e-5 of max|ΔW|); at rank 4 the reported error is the tail energy of ΔW's
    /// singular values, computed here with a full LAPACK SVD of the reference ΔW.
    @Test func convertWithTheBaseApproximatesTheChange() throws {
        let adapter = try AdapterReader.read(Self.peftPath, acceptDoRA: true)
        let base = try SDXLModel.open(Self.unetFile)
        for rank in [4, 128] {
            let (converted, report) = try Converter.convert(adapter, ConvertRequest(to: .kohya, rank: rank, base: BaseWeights(model: base)))
            let path = Fixtures.temporaryFolder().appendingPathComponent("lora.safetensors").path
            try AdapterWriter.write(converted, format: .kohya, to: path)
            let back = try AdapterReader.read(path)
            for (i, module) in adapter.modules.enumerated() {
                let (_, layer) = ModuleNames.split(module.name)
                let w = try base.floats(.unet, layer + ".weight")
                let merged = try Self.peftMerged.floats(Self.peftMerged.info(module.name + ".weight"))
                let expected = zip(merged, w).map { $0 - $1 }
                let s = FamiliesTests().singularValues(expected.map(Double.init), rows: module.outFeatures, cols: module.inFeatures)
                let keep = min(rank, s.count)
                let tail = (s.dropFirst(keep).reduce(0) { $0 + $1 * $1 } / s.reduce(0) { $0 + $1 * $1 }).squareRoot()
                let reported = try #require(report.modules[i].relativeError)
                #expect(abs(reported - tail) <= 1e-4, "\(module.name) rank \(rank): \(reported) vs \(tail)")
                let j = try #require(back.modules.firstIndex { $0.name == module.name })
                let error = scaleRelative(try back.delta(j, at: nil), expected)
                if keep == s.count {
                    #expect(error <= 1e-5, "\(module.name): \(error)")
                } else {
                    #expect(tail > 0.05 && error > 0, "\(module.name): rank \(rank) is lossy")
                }
            }
        }
        // Without --rank (or without the base) nothing is converted.
        #expect(throws: ConversionUsageError.self) { _ = try Converter.convert(adapter, ConvertRequest(to: .kohya, base: BaseWeights(model: base))) }
        #expect(throws: AdapterError.self) { _ = try Converter.convert(adapter, ConvertRequest(to: .kohya, rank: 4)) }
    }

    static func kohyaDoRA(module: String, magnitude: [Float], width: Int = 8, rank: Int = 2) throws -> String {
        let down = (0..<(rank * width)).map { Float($0 % 5) * 0.1 }, up = (0..<(width * rank)).map { Float($0 % 3) * 0.1 }
        let bytes = try SafeTensorsFixture.file([
            ("\(module).lora_down.weight", .f32, [rank, width], SafeTensorsFixture.floats(down, .f32)),
            ("\(module).lora_up.weight", .f32, [width, rank], SafeTensorsFixture.floats(up, .f32)),
            ("\(module).dora_scale", .f32, [magnitude.count, 1], SafeTensorsFixture.floats(magnitude, .f32)),
        ])
        let path = Fixtures.temporaryFolder().appendingPathComponent("dora.safetensors").path
        SafeTensorsFixture.write(bytes, to: path)
        return path
    }

    /// SDXL has a tenth transformer block in down_blocks.2; the tiny checkpoint has two.
    @Test func missingBaseLayerIsAnErrorNamingIt() throws {
        let path = try Self.kohyaDoRA(module: "lora_unet_down_blocks_2_attentions_0_transformer_blocks_9_attn1_to_q",
                                      magnitude: [Float](repeating: 1, count: 8))
        let adapter = try AdapterReader.read(path, acceptDoRA: true)
        let out = Fixtures.temporaryFolder().appendingPathComponent("baked.safetensors").path
        #expect {
            _ = try CheckpointBake.bake([.init(adapter: adapter, weight: 1, label: "dora")], into: Self.unetFile, output: out, atTimestep: 0)
        } throws: { error in
            "\(error)".contains("down_blocks.2.attentions.0.transformer_blocks.9.attn1.to_q") && "\(error)".contains("DoRA")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func nonFiniteMagnitudeIsRefused() throws {
        var magnitude = [Float](repeating: 1, count: 8)
        magnitude[3] = .nan
        let path = try Self.kohyaDoRA(module: "lora_unet_down_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q", magnitude: magnitude)
        let adapter = try AdapterReader.read(path, acceptDoRA: true)
        #expect {
            _ = try NonFinitePolicy.refuse.admit(adapter)
        } throws: { error in
            "\(error)".contains("dora_scale") && "\(error)".contains("NaN")
        }
    }

    /// A magnitude vector that fits neither axis is refused when the header is read.
    @Test func magnitudeOfTheWrongSizeIsRefused() throws {
        let path = try Self.kohyaDoRA(module: "lora_unet_down_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q",
                                      magnitude: [Float](repeating: 1, count: 7))
        #expect {
            _ = try AdapterReader.read(path, acceptDoRA: true)
        } throws: { error in
            "\(error)".contains("magnitude vector of shape [7, 1]")
        }
    }
}
