import Foundation
import SafeTensors
import SDXL
import Testing
import TestSupport
import TorchPickle
@testable import Adapters

/// T-LoRA as LyCORIS and the official FLUX.1 trainer write it (docs/families.md, "LyCORIS T-LoRA" and
/// "The official FLUX.1 T-LoRA"). References: Fixtures/fixturegen/tlora_foreign.py — LyCORIS' own
/// TLoraModule rebuilt by its loader from the saved tensors and the tiny SDXL UNet (fp16, upcast to
/// float32), and the official FLUX layer's down → mask → up on the identity.
struct ForeignTLoRATests {
    static let lycorisPath = Fixtures.path("adapters/lycoris-tlora/tlora.safetensors")
    static let unetFile = Fixtures.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors")
    static let fluxPath = Fixtures.path("adapters/flux-tlora/checkpoint-100/lora.pt")
    static let reference = try! SafeTensorsFile.open(Fixtures.path("reference/tlora_foreign.safetensors"))
    /// Mask ranks of the references and a DDPM timestep giving each with R = 4, r_min = 2.
    static let timesteps: [(rank: Int, t: Double)] = [(4, 0), (3, 400), (2, 600)]

    static func base() throws -> TLoRABase { TLoRABase(model: try SDXLModel.open(unetFile)) }

    static func kohyaName(_ canonical: String) -> String {
        "lora_unet_" + ModuleNames.split(canonical).1.replacingOccurrences(of: ".", with: "_")
    }

    static func referenceDelta(_ key: String) throws -> [Float] { try reference.floats(reference.info(key)) }

    /// Read: kohya-named Q, P, λ, alpha; no frozen part, so factors are refused until the base is given.
    @Test func readsLycorisAndRefusesWithoutTheBase() throws {
        let adapter = try AdapterReader.read(Self.lycorisPath)
        #expect(adapter.modules.count == 3 && adapter.unknownKeys.isEmpty)
        #expect(adapter.modules.allSatisfy { $0.frozenFromBase && $0.isOrtho && $0.rank == 4 && $0.alpha == 2 })
        #expect(adapter.schedule == nil && adapter.warnings.contains { $0.contains("stores no schedule") })
        #expect(throws: AdapterError.self) { _ = try adapter.factors(0) }
        do {
            _ = try Converter.convert(adapter, ConvertRequest(to: .kohya))
            Issue.record("converted without --base")
        } catch let error as ConversionUsageError {
            #expect(error.message.contains("--base MODEL") && error.message.contains(adapter.modules[0].name), "\(error)")
        }
    }

    /// The frozen part recomputed from the base is LyCORIS' (component by component, signs aside), and
    /// ΔW under every prefix mask is LyCORIS' get_diff_weight: 1e-4 of max|ΔW| (float32 SVDs on both sides).
    @Test func deltaWithTheBaseEqualsLycoris() throws {
        let adapter = LycorisTLoRA.resolve(try AdapterReader.read(Self.lycorisPath), base: try Self.base())
        for (index, module) in adapter.modules.enumerated() {
            let name = Self.kohyaName(module.name)
            guard case let .ortho(o) = try adapter.factors(index) else { Issue.record("not ortho"); continue }
            let baseP = try Self.referenceDelta("lycoris/\(name)/base_p"), baseQ = try Self.referenceDelta("lycoris/\(name)/base_q")
            let baseLambda = try Self.referenceDelta("lycoris/\(name)/base_lambda")
            for c in 0..<o.rank {
                // λ0 carries LyCORIS' scale alpha/R = 0.5; P0, Q0 columns/rows equal up to one shared sign.
                #expect(abs(o.lambda0[c] - 0.5 * baseLambda[c]) <= 1e-5 * baseLambda[0], "\(name) λ0[\(c)]")
                let sign: Float = (0..<o.outFeatures).reduce(0) { $0 + o.p0[$1 * o.rank + c] * baseP[$1 * o.rank + c] } > 0 ? 1 : -1
                let p = (0..<o.outFeatures).map { o.p0[$0 * o.rank + c] * sign }, want = (0..<o.outFeatures).map { baseP[$0 * o.rank + c] }
                let q = (0..<o.inFeatures).map { o.q0[c * o.inFeatures + $0] * sign }, wantQ = (0..<o.inFeatures).map { baseQ[c * o.inFeatures + $0] }
                #expect(scaleRelative(p, want) <= 1e-4 && scaleRelative(q, wantQ) <= 1e-4, "\(name) component \(c)")
            }
            for (rank, _) in Self.timesteps {
                let delta = Delta.compute(.ortho(o), keep: rank)
                let error = scaleRelative(delta, try Self.referenceDelta("lycoris/\(name)/delta_r\(rank)"))
                #expect(error <= 1e-4, "\(name) r=\(rank): \(error)")
            }
        }
    }

    /// LyCORIS → tlkit T-LoRA (schedule from --min-rank) → back to LyCORIS: ΔW(t) of the tlkit file is LyCORIS'
    /// under the same mask, and the LyCORIS file written back holds the same Q, P (exactly) and λ·s, alpha·… (1e-5).
    @Test func convertsToTlkitAndBack() throws {
        let folder = Fixtures.temporaryFolder()
        let tlora = folder.appendingPathComponent("t.safetensors").path, back = folder.appendingPathComponent("back.safetensors").path
        let read = try AdapterReader.read(Self.lycorisPath, flags: ScheduleFlags(minRank: 2))
        #expect(read.schedule == RankSchedule(maxRank: 4, minRank: 2) && read.method == .tlora)
        let base = try Self.base()
        let (converted, _) = try Converter.convert(LycorisTLoRA.resolve(read, base: base), ConvertRequest(to: .tlora))
        try AdapterWriter.write(converted, format: .tlora, to: tlora)
        let written = try AdapterReader.read(tlora)
        #expect(written.schedule == RankSchedule(maxRank: 4, minRank: 2) && written.method == .tlora)
        for (index, module) in written.modules.enumerated() {
            for (rank, t) in Self.timesteps {
                #expect(written.keptComponents(rank: module.rank, at: t) == rank)
                let error = scaleRelative(try written.delta(index, at: t), try Self.referenceDelta("lycoris/\(Self.kohyaName(module.name))/delta_r\(rank)"))
                #expect(error <= 1e-4, "\(module.name) t=\(t): \(error)")
            }
        }
        // Back: the frozen part is the base's, so LyCORIS can hold it.
        let (lycoris, _) = try Converter.convert(written, ConvertRequest(to: .lycorisTlora, tloraBase: base))
        try AdapterWriter.write(lycoris, format: .lycorisTlora, to: back)
        // tlkit writes sd-scripts' SGM block names for SDXL; the fixture has diffusers' block names.
        let original = try SafeTensorsFile.open(Self.lycorisPath), again = try SafeTensorsFile.open(back)
        #expect(again.tensors.count == original.tensors.count)
        for info in original.tensors {
            let suffix = try #require([".q_layer.weight", ".p_layer.weight", ".lambda_layer", ".alpha"].first { info.name.hasSuffix($0) })
            let canonical = try #require(ModuleNames.canonical(fileName: String(info.name.dropLast(suffix.count)), format: .kohya))
            let name = try #require(ModuleNames.kohyaName(canonical)) + suffix
            let error = scaleRelative(try again.floats(again.info(name)), try original.floats(info))
            #expect(error <= (suffix.hasSuffix("_layer.weight") ? 0 : 1e-5), "\(info.name): \(error)")
        }
        // Its schedule travels in tlora.* metadata and is read back.
        let reread = try AdapterReader.read(back)
        #expect(reread.schedule == RankSchedule(maxRank: 4, minRank: 2) && reread.needsFrozenBase)
    }

    /// A T-LoRA whose frozen part is not the base's SVD (tlkit's own training, the official trainer) has no
    /// LyCORIS form; without --base nothing is written either.
    @Test func refusesWhatLycorisCannotHold() throws {
        let official = try AdapterReader.read(Fixtures.path(Fixtures.adapters["official-ortho"]!))
        #expect(throws: ConversionUsageError.self) { _ = try Converter.convert(official, ConvertRequest(to: .lycorisTlora)) }
        do {
            _ = try Converter.convert(official, ConvertRequest(to: .lycorisTlora, tloraBase: try Self.base()))
            Issue.record("an official T-LoRA written as LyCORIS")
        } catch let error as AdapterError {
            #expect(error.message.contains("not the principal SVD of the base weight"), "\(error)")
        }
    }

    static func fluxAdapter(flags: ScheduleFlags = ScheduleFlags(), path: String = fluxPath) throws -> Adapter {
        let archive = try TorchArchive(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        return try AdapterReader.read(file: archive.safeTensors(name: path), path: path, flags: flags)
    }

    /// The official FLUX.1 lora.pt: FLUX.1 base, vanilla T-LoRA with the schedule of ../logs/hparams.yml,
    /// every applied layer named as diffusers' FLUX transformer names it, the layers single blocks never
    /// call left out with a warning each, and ΔW(t) equal to the official layer's (1e-6 of max|ΔW|).
    @Test func readsTheOfficialFluxCheckpoint() throws {
        let adapter = try Self.fluxAdapter()
        #expect(adapter.base.base == .flux1 && adapter.format == .tloraOfficial && adapter.method == .vanillaTlora)
        #expect(adapter.schedule == RankSchedule(maxRank: 4, minRank: 2))
        #expect(adapter.metadata["tlora.steps"] == "100" && adapter.metadata["tlora.token"] == "sks")
        // 1 double block × 7 layers + 2 single blocks × 3; 2 × 4 left out, all zero.
        #expect(adapter.modules.count == 13 && adapter.unknownKeys.isEmpty)
        #expect(adapter.modules.contains { $0.name == "transformer.transformer_blocks.0.attn.add_k_proj" })
        #expect(adapter.modules.contains { $0.name == "transformer.transformer_blocks.0.attn.to_out.0" })
        let leftOut = adapter.warnings.filter { $0.contains("left out") }
        #expect(leftOut.count == 1 && leftOut[0].contains("8 layer(s) left out") && leftOut[0].contains("all of them are zero"), "\(adapter.warnings)")
        for (index, module) in adapter.modules.enumerated() {
            for (rank, t) in Self.timesteps {
                let error = scaleRelative(try adapter.delta(index, at: t), try Self.referenceDelta("flux/\(FluxReference.key(module.name))/delta_r\(rank)"))
                #expect(error <= 1e-6, "\(module.name) t=\(t): \(error)")
            }
        }
    }

    /// To PEFT (diffusers' FLUX names) with the schedule in tlora.* metadata, read back with the same ΔW(t).
    @Test func convertsTheFluxCheckpoint() throws {
        let adapter = try Self.fluxAdapter()
        let out = Fixtures.temporaryFolder().appendingPathComponent("flux.safetensors").path
        let (peft, _) = try Converter.convert(adapter, ConvertRequest(to: .peft))
        try AdapterWriter.write(peft, format: .peft, to: out)
        let back = try AdapterReader.read(out)
        #expect(back.base.base == .flux1 && back.schedule == adapter.schedule && back.method == .vanillaTlora)
        #expect(Set(back.modules.map(\.name)) == Set(adapter.modules.map(\.name)))
        for (index, module) in adapter.modules.enumerated() {
            let other = try #require(back.modules.firstIndex { $0.name == module.name })
            for (_, t) in Self.timesteps {
                #expect(scaleRelative(try back.delta(other, at: t), try adapter.delta(index, at: t)) <= 1e-7)
            }
        }
    }

    /// To kohya: q, k, v stacked into BFL's fused layers (double blocks' img_attn_qkv and txt_attn_qkv, single
    /// blocks' linear1 with zero MLP rows), three components per mask index; read back, each fused ΔW(t) is
    /// the official layers' ΔW(t) one above the other (1e-6), and the other modules' ΔW(t) unchanged.
    @Test func convertsTheFluxCheckpointToKohya() throws {
        let adapter = try Self.fluxAdapter()
        let out = Fixtures.temporaryFolder().appendingPathComponent("flux-kohya.safetensors").path
        let (kohya, report) = try Converter.convert(adapter, ConvertRequest(to: .kohya))
        #expect(report.notes.contains { $0.contains("stacked") })
        try AdapterWriter.write(kohya, format: .kohya, to: out)
        let back = try AdapterReader.read(out)
        #expect(back.base.base == .flux1 && back.schedule == adapter.schedule && back.componentsPerRank == 3)
        // 1 double block: qkv, added qkv, to_out.0; 2 single blocks: linear1.
        #expect(Set(back.modules.map(\.name)) == ["transformer.transformer_blocks.0.attn.to_qkv", "transformer.transformer_blocks.0.attn.to_added_qkv",
                                                   "transformer.transformer_blocks.0.attn.to_out.0", "transformer.single_transformer_blocks.0.linear1",
                                                   "transformer.single_transformer_blocks.1.linear1"])
        for (index, module) in back.modules.enumerated() {
            let path = ModuleNames.split(module.name).1, block = path.components(separatedBy: ".attn.").first ?? path
            let owner = path.hasSuffix("linear1") ? String(path.dropLast("linear1".count)) + "attn" : block + ".attn"
            let layers: [String]
            switch path.split(separator: ".").last.map(String.init) ?? "" {
            case "to_qkv", "linear1": layers = ["to_q", "to_k", "to_v"]
            case "to_added_qkv": layers = ["to_q_proj", "to_k_proj", "to_v_proj"]
            default: layers = ["to_out"]
            }
            for (rank, t) in Self.timesteps {
                let delta = try back.delta(index, at: t), width = module.inFeatures
                var expected = [Float]()
                for layer in layers { expected += try Self.referenceDelta("flux/\(owner).processor.\(layer)/delta_r\(rank)") }
                expected += [Float](repeating: 0, count: module.outFeatures * width - expected.count)
                let error = scaleRelative(delta, expected)
                #expect(error <= 1e-6, "\(module.name) t=\(t): \(error)")
            }
        }
    }

    /// Without ../logs/hparams.yml the schedule must come from --min-rank, as for the SDXL official layout.
    @Test func fluxCheckpointWithoutHparamsNeedsMinRank() throws {
        let folder = Fixtures.temporaryFolder().appendingPathComponent("checkpoint-100")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let copy = folder.appendingPathComponent("lora.pt").path
        try FileManager.default.copyItem(atPath: Self.fluxPath, toPath: copy)
        do {
            _ = try Self.fluxAdapter(path: copy)
            Issue.record("read without a schedule")
        } catch let error as AdapterError {
            #expect(error.message.contains("--min-rank"), "\(error)")
        }
        let adapter = try Self.fluxAdapter(flags: ScheduleFlags(minRank: 2), path: copy)
        #expect(adapter.schedule == RankSchedule(maxRank: 4, minRank: 2) && adapter.base.base == .flux1)
    }
}

extension ForeignTLoRATests {
    /// LyCORIS T-LoRA on a convolution (1×1 q/p beside the layer's kernel) is refused, naming the module.
    @Test func refusesLycorisConvolutionModules() throws {
        let name = "lora_unet_down_blocks_1_resnets_0_conv1"
        let f = { (n: Int) in SafeTensorsFixture.floats(Array(repeating: 0.01, count: n), .f32) }
        let bytes = try SafeTensorsFixture.file([
            (name + ".q_layer.weight", .f32, [4, 32, 1, 1], f(128)), (name + ".p_layer.weight", .f32, [64, 4, 1, 1], f(256)),
            (name + ".lambda_layer", .f32, [1, 4], f(4)), (name + ".alpha", .f32, [], f(1)),
        ])
        let path = SafeTensorsFixture.folder() + "/conv.safetensors"
        SafeTensorsFixture.write(bytes, to: path)
        do {
            _ = try AdapterReader.read(path)
            Issue.record("a convolution T-LoRA read")
        } catch let error as AdapterError {
            #expect(error.message.contains(name) && error.message.contains("convolution"), "\(error)")
        }
    }

    /// A single block's unapplied layer that is not zero is named in the warning (and still left out, as the
    /// official code leaves it out).
    @Test func namesNonZeroUnappliedFluxLayers() throws {
        let archive = try TorchArchive(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fluxPath))))
        let file = try archive.safeTensors(name: Self.fluxPath)
        var tensors: [(String, DType, [Int], [UInt8])] = []
        for info in file.tensors {
            var values = try file.floats(info)
            if info.name == "single_transformer_blocks.1.attn.processor.to_out_lora.up.weight" { values[0] = 0.5 }
            tensors.append((info.name, .f32, info.shape, SafeTensorsFixture.floats(values, .f32)))
        }
        let folder = SafeTensorsFixture.folder()
        let path = folder + "/flux.safetensors"
        SafeTensorsFixture.write(try SafeTensorsFixture.file(tensors), to: path)
        let adapter = try AdapterReader.read(path, flags: ScheduleFlags(minRank: 2))
        #expect(adapter.modules.count == 13)
        let note = adapter.warnings.first { $0.contains("left out") } ?? ""
        #expect(note.contains("1 hold non-zero values") && note.contains("single_transformer_blocks.1.attn.processor.to_out"), "\(note)")
    }
}

/// The reference keys of the FLUX fixture: `<processor>.<official layer>`.
enum FluxReference {
    static func key(_ canonical: String) -> String {
        let path = ModuleNames.split(canonical).1
        let leaves = ["to_q": "to_q", "to_k": "to_k", "to_v": "to_v", "to_out.0": "to_out",
                      "add_q_proj": "to_q_proj", "add_k_proj": "to_k_proj", "add_v_proj": "to_v_proj"]
        for (leaf, layer) in leaves where path.hasSuffix(".attn." + leaf) {
            return String(path.dropLast(leaf.count)) + "processor." + layer
        }
        return path
    }
}
