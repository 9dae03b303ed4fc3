import Foundation
import SafeTensors
import SDXL
import Testing
import TestSupport
@testable import Adapters

/// (IA)³ modules baked into a checkpoint (docs/families.md, "(IA)³"). References (Fixtures/fixturegen/ia3.py):
/// LyCORIS' IA3Module `get_merged_weight` and PEFT's IA3 layers' `merge()`, both in float32 on the fp16
/// tiny SDXL UNet upcast to float32, on two linear layers and two convolutions, each library scaling two
/// of them on the input side.
struct IA3Tests {
    static let lycorisPath = Fixtures.path("adapters/ia3/lycoris.safetensors")
    static let peftPath = Fixtures.path("adapters/peft-ia3")
    static let unetFile = Fixtures.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")
    static let singleFile = Fixtures.path("models/tiny-sdxl.safetensors")
    static let merged = try! SafeTensorsFile.open(Fixtures.path("reference/ia3_merged.safetensors"))
    static let inputSide: Set<String> = ["unet.mid_block.attentions.0.transformer_blocks.0.ff.net.2", "unet.down_blocks.1.resnets.0.conv_shortcut"]

    static func reference(_ key: String) throws -> [Float] { try merged.floats(merged.info(key)) }

    @Test(arguments: [("lycoris", lycorisPath), ("peft", peftPath)])
    func readsTheLayout(_ spelling: String, _ path: String) throws {
        let adapter = try AdapterReader.read(path, acceptDoRA: true)
        #expect(adapter.modules.count == 4 && adapter.hasIA3)
        for module in adapter.modules {
            let layout = try #require(module.ia3)
            #expect(layout.spelling.rawValue == spelling)
            #expect(layout.axis == (Self.inputSide.contains(module.name) ? .input : .output), "\(module.name)")
            #expect(module.kernel == (module.name.hasSuffix("conv1") ? [3, 3] : module.name.hasSuffix("conv_shortcut") ? [1, 1] : []))
            #expect(throws: AdapterError.self) { try adapter.factors(adapter.modules.firstIndex(of: module)!) }
        }
    }

    /// W' = W ⊙ s in float32 is the same float32 product each library forms: tolerance 0 (bit for bit),
    /// weights and PEFT's scaled (or, on the input side, untouched) biases.
    @Test(arguments: [("lycoris", lycorisPath), ("peft", peftPath)])
    func mergedWeightEqualsTheLibrarysMerge(_ spelling: String, _ path: String) throws {
        let adapter = try AdapterReader.read(path, acceptDoRA: true)
        let base = try SDXLModel.open(Self.unetFile)
        for (i, stored) in adapter.modules.enumerated() {
            let (_, layer) = ModuleNames.split(stored.name)
            let module = try IA3.resolved(stored, shape: try #require(base.shape(.unet, layer + ".weight")))
            let factors = try #require(try adapter.ia3(i))
            let w = try base.floats(.unet, layer + ".weight")
            let got = IA3.merged(w, rows: module.outFeatures, cols: module.inFeatures, kernelArea: max(1, module.kernel.reduce(1, *)), factors)
            let expected = try Self.reference("\(spelling)/\(stored.name).weight")
            #expect(got == expected, "\(spelling) \(stored.name): max |Δ| \(zip(got, expected).map { abs($0 - $1) }.max() ?? .nan)")
            guard spelling == "peft", let bias = base.locate(.unet, layer + ".bias") else { continue }
            var b = try base.floats(.unet, layer + ".bias")
            if factors.layout.scalesBias { CheckpointBake.applyIA3ToBias(factors, weight: 1, to: &b, offset: 0) }
            let expectedBias = try Self.reference("peft/\(stored.name).bias")
            #expect(bias.info.shape.count == 1 && b == expectedBias, "\(stored.name) bias")
        }
    }

    /// Baked into the fp16 checkpoints (diffusers UNet file and single file): every weight and bias element
    /// is the fp16 value nearest the float32 reference (tolerance 0 after that one rounding).
    @Test(arguments: [unetFile, singleFile])
    func bakeMatchesLyCORISAndPEFT(_ checkpoint: String) throws {
        for (spelling, path) in [("lycoris", Self.lycorisPath), ("peft", Self.peftPath)] {
            let adapter = try AdapterReader.read(path, acceptDoRA: true)
            let out = Fixtures.temporaryFolder().appendingPathComponent("baked.safetensors").path
            let report = try CheckpointBake.bake([.init(adapter: adapter, weight: 1, label: spelling)], into: checkpoint, output: out, atTimestep: 0)
            #expect(report.applied.count == 4 && report.skipped.isEmpty)
            let baked = try SDXLModel.open(out), base = try SDXLModel.open(checkpoint)
            for module in adapter.modules {
                let (_, layer) = ModuleNames.split(module.name)
                var tensors = [layer + ".weight"]
                if spelling == "peft", base.locate(.unet, layer + ".bias") != nil { tensors.append(layer + ".bias") }
                for tensor in tensors {
                    let expected = try Self.reference("\(spelling)/unet.\(tensor)").map { Float(Float16($0)) }
                    let got = try baked.floats(.unet, tensor)
                    #expect(got == expected, "\(spelling) \(tensor): \(zip(got, expected).filter { $0 != $1 }.count) elements differ")
                }
            }
            // LyCORIS leaves biases alone; so does PEFT on the input side.
            if spelling == "lycoris" {
                for layer in ["down_blocks.1.resnets.0.conv1.bias", "mid_block.attentions.0.transformer_blocks.0.ff.net.2.bias"] {
                    #expect(try baked.floats(.unet, layer) == base.floats(.unet, layer))
                }
            }
        }
    }

    /// At weight w the bake blends W + w·(W' − W), as DoRA's does; w = 0 leaves the checkpoint's values.
    @Test func weightBlendsLinearly() throws {
        let adapter = try AdapterReader.read(Self.lycorisPath, acceptDoRA: true)
        let folder = Fixtures.temporaryFolder()
        let half = folder.appendingPathComponent("half.safetensors").path, none = folder.appendingPathComponent("none.safetensors").path
        _ = try CheckpointBake.bake([.init(adapter: adapter, weight: 0.5, label: "half")], into: Self.unetFile, output: half, atTimestep: 0)
        _ = try CheckpointBake.bake([.init(adapter: adapter, weight: 0, label: "none")], into: Self.unetFile, output: none, atTimestep: 0)
        let base = try SDXLModel.open(Self.unetFile), halfModel = try SDXLModel.open(half), noneModel = try SDXLModel.open(none)
        let layer = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
        let w = try base.floats(.unet, layer)
        let full = try Self.reference("lycoris/unet.\(layer)")
        let expected = zip(w, full).map { Float(Double($0) + 0.5 * (Double($1) - Double($0))) }
        let steps = halfRoundingSteps(try halfModel.floats(.unet, layer), expected)
        #expect(steps.farther == 0 && steps.oneStep <= expected.count / 100, "\(steps)")
        #expect(try noneModel.floats(.unet, layer) == w)
    }

    /// Grouping: LyCORIS' `<kohya name>.weight` + `.on_input` and PEFT's `ia3_l` are (IA)³ vectors; a
    /// deeper `.weight` (a LoRA factor, GLoRA's `a1.weight`) is not.
    @Test func groupsBothSpellings() throws {
        let lycoris = try #require(AdapterKeys.group(["lora_unet_a_to_q.weight", "lora_unet_a_to_q.on_input", "lora_unet_b.a1.weight"]))
        #expect(lycoris.format == .kohya && lycoris.unsupportedVariant == "IA3")
        #expect(lycoris.modules.map(\.fileName) == ["lora_unet_a_to_q"] && lycoris.unknownKeys == ["lora_unet_b.a1.weight"])
        #expect(lycoris.modules[0].tensors == [.ia3Vector: "lora_unet_a_to_q.weight", .ia3OnInput: "lora_unet_a_to_q.on_input"])
        let peft = try #require(AdapterKeys.group(["base_model.model.x.to_q.ia3_l", "base_model.model.x.ff.ia3_l.default"]))
        #expect(peft.format == .peft && peft.unsupportedVariant == "IA3" && peft.modules.count == 2)
        let lora = try #require(AdapterKeys.group(["lora_unet_a.lora_down.weight", "lora_unet_a.lora_up.weight"]))
        #expect(lora.unsupportedVariant == nil && lora.modules[0].tensors[.ia3Vector] == nil)
    }

    /// A checkpoint whose layer does not have the vector's length is refused, naming the module.
    @Test func misfitIsRefused() throws {
        var module = ModuleInfo(name: "unet.x.to_q", isOrtho: false, rank: 0, inFeatures: 0, outFeatures: 32, dtype: .f32)
        module.ia3 = IA3Layout(axis: .output, spelling: .lycoris)
        #expect(throws: AdapterError.self) { try IA3.resolved(module, shape: [64, 64]) }
        #expect(try IA3.resolved(module, shape: [32, 16]).inFeatures == 16)
        module.ia3 = IA3Layout(axis: .input, spelling: .peft)
        module.inFeatures = 16
        #expect(try IA3.resolved(module, shape: [8, 16]).outFeatures == 8)
        #expect(throws: AdapterError.self) { try IA3.resolved(module, shape: [8, 16, 3, 3]) }
    }

    /// PEFT's feedforward_modules: names match the end of the module's path; a string is a regular
    /// expression over the whole path.
    @Test func peftFeedforwardRule() throws {
        let names = try PeftIA3Config.parse(Data(#"{"peft_type": "IA3", "feedforward_modules": ["ff.net.2"]}"#.utf8), path: "c")
        #expect(names.isFeedforward("base_model.model.mid_block.attentions.0.transformer_blocks.0.ff.net.2"))
        #expect(!names.isFeedforward("base_model.model.mid_block.attentions.0.transformer_blocks.0.attn1.to_q"))
        let regex = try PeftIA3Config.parse(Data(#"{"feedforward_modules": ".*ff\\.net\\.2"}"#.utf8), path: "c")
        #expect(regex.isFeedforward("base_model.model.mid_block.attentions.0.transformer_blocks.0.ff.net.2"))
        #expect(!regex.isFeedforward("base_model.model.mid_block.attentions.0.transformer_blocks.0.ff.net.2.x"))
        #expect(throws: AdapterError.self) { try PeftIA3Config.parse(Data(#"{"peft_type": "LORA"}"#.utf8), path: "c") }
    }
}
