import Engine
import Foundation
import SafeTensors
import SDXL
import TestSupport
import Testing
import TextEncoders
import Tokenizer

/// The committed fixtures, found from this file so tests run from any folder.
enum Reference {
    static func path(_ relative: String) -> String { FixtureFolder.path(relative) }

    static let layouts: [String: String] = ["folder": "models/tiny-sdxl", "single-file": "models/tiny-sdxl.safetensors"]

    /// The reference tensors of Fixtures/reference/text_encoders.safetensors and the prompts they were made from.
    static let outputs: (tensors: [String: Tensor<Float>], prompts: [String]) = {
        let file = try! SafeTensorsFile.open(path("reference/text_encoders.safetensors"))
        var out: [String: Tensor<Float>] = [:]
        for info in file.tensors { out[info.name] = Tensor(shape: info.shape, values: try! file.floats(info)) }
        let prompts = try! JSONDecoder().decode([String].self, from: Data(file.metadata["prompts"]!.utf8))
        return (out, prompts)
    }()

    static func encoders(_ layout: String) throws -> SDXLTextEncoders {
        try SDXLTextEncoders(
            model: try SDXLModel.open(path(layouts[layout]!)),
            tokenizerFolder: path("models/tiny-sdxl/tokenizer"), tokenizer2Folder: path("models/tiny-sdxl/tokenizer_2"))
    }

}

@Suite struct TextEncoderReferenceTests {
    static let tolerance = 1e-4

    @Test(arguments: ["folder", "single-file"])
    func matchesTransformers(layout: String) throws {
        let te = try Reference.encoders(layout)
        let (ref, prompts) = Reference.outputs
        #expect(prompts.count == 4)
        #expect(te.encoder.config.activation == .quickGELU && te.encoder2.config.activation == .gelu)
        #expect(te.encoder.config.layers == 2 && te.encoder2.config.layers == 3)
        for (i, prompt) in prompts.enumerated() {
            let (a, b) = try te.encodeEach(prompt)
            // The tokenizers reproduce the reference ids (so the comparison is of the same input).
            for (name, tok) in [("text_encoder", te.tokenizer), ("text_encoder_2", te.tokenizer2)] {
                #expect(tok.encode(prompt).map(Float.init) == ref["ids_\(name)_\(i)"]!.array, "ids of \(name), prompt \(i)")
            }
            var errors: [(String, Double)] = []
            for (name, out) in [("text_encoder", a), ("text_encoder_2", b)] {
                errors.append(("penultimate_\(name)", scaleRelative(out.penultimate, ref["penultimate_\(name)_\(i)"]!)))
                errors.append(("last_\(name)", scaleRelative(out.last, ref["last_\(name)_\(i)"]!)))
            }
            errors.append(("text_embeds", scaleRelative(b.projected!, ref["text_embeds_\(i)"]!)))

            let (embeds, pooled) = try te.encode(prompt)
            #expect(embeds.shape == [77, 128] && pooled.shape == [64])
            let expected = try SDXLTextEncoders.concatenate(
                ref["penultimate_text_encoder_\(i)"]!.reshaped([77, 64]), ref["penultimate_text_encoder_2_\(i)"]!.reshaped([77, 64]))
            errors.append(("prompt_embeds", scaleRelative(embeds, expected)))
            errors.append(("pooled", scaleRelative(pooled, ref["text_embeds_\(i)"]!)))

            print("[\(layout)] prompt \(i): " + errors.map { "\($0.0) \(String(format: "%.2e", $0.1))" }.joined(separator: ", "))
            for (name, error) in errors {
                #expect(error <= Self.tolerance, "\(layout) prompt \(i) \(name): \(error)")
            }
        }
    }

    @Test func poolingPicksTheFirstEndToken() throws {
        let te = try Reference.encoders("folder")
        #expect(te.encoder2.config.pooling == .argmax)
        // tokenizer_2 pads with "!" (id 0), so the end token is the largest id; tokenizer pads with the end token itself.
        let ids = te.tokenizer.encode("a photo of sks dog")
        #expect(te.encoder.poolingIndex(ids) == ids.firstIndex(of: 49407))
        let ids2 = te.tokenizer2.encode("a photo of sks dog")
        #expect(te.encoder2.poolingIndex(ids2) == ids2.firstIndex(of: 49407))
    }

    @Test func rejectsBadInput() throws {
        let te = try Reference.encoders("folder")
        #expect(throws: TextEncoderError.self) { try te.encoder.forward(ids: []) }
        #expect(throws: TextEncoderError.self) { try te.encoder.forward(ids: Array(repeating: 0, count: 78)) }
        #expect(throws: TextEncoderError.self) { try te.encoder.forward(ids: [49408]) }
    }
}

@Suite struct TextEncoderConfigTests {
    /// The single file has no config.json: shapes and SDXL defaults must give what the folder's config.json says.
    @Test func singleFileInfersTheFolderConfig() throws {
        let folder = try SDXLModel.open(Reference.path(Reference.layouts["folder"]!))
        let single = try SDXLModel.open(Reference.path(Reference.layouts["single-file"]!))
        #expect(folder.configs[.textEncoder] != nil && single.configs[.textEncoder] == nil)
        for component in [Component.textEncoder, .textEncoder2] {
            let a = try CLIPTextConfig.infer(model: folder, component: component)
            let b = try CLIPTextConfig.infer(model: single, component: component)
            #expect(a == b, "\(component)")
            #expect(a.hiddenSize == 64 && a.intermediateSize == 256 && a.heads == 1 && a.maxPositions == 77)
        }
    }

    @Test func firstOfPoolingPicksTheFirstMatch() throws {
        let model = try SDXLModel.open(Reference.path(Reference.layouts["folder"]!))
        var config = try CLIPTextConfig.infer(model: model, component: .textEncoder2)
        config.pooling = .firstOf(320)
        let encoder = try CLIPTextEncoder(model: model, component: .textEncoder2, config: config)
        #expect(encoder.poolingIndex([49406, 5, 320, 7, 320, 49407]) == 2)
        #expect(encoder.poolingIndex([49406, 5, 49407]) == 0)  // absent: position 0, as transformers' argmax of zeros
        let out = try encoder.forward(ids: [49406, 5, 320, 7, 320, 49407])
        #expect(out.pooled.array == out.last.batch(2).array)
        #expect(out.projected?.shape == [64])
    }

    @Test func missingComponentIsReported() throws {
        let model = try SDXLModel.open(Reference.path("models/tiny-sdxl/unet/diffusion_pytorch_model.safetensors"))
        #expect(throws: TextEncoderError.self) { try CLIPTextEncoder(model: model, component: .textEncoder) }
    }
}

@Suite struct TextEncoderMultiHeadTests {
    /// The fixture's configs have one head; the same weights split into 4 heads check the head layout.
    @Test(arguments: ["folder", "single-file"])
    func fourHeadsMatchTransformers(layout: String) throws {
        let model = try SDXLModel.open(Reference.path(Reference.layouts[layout]!))
        var config = try CLIPTextConfig.infer(model: model, component: .textEncoder2)
        config.heads = 4
        let encoder = try CLIPTextEncoder(model: model, component: .textEncoder2, config: config)
        let (ref, _) = Reference.outputs
        let out = try encoder.forward(ids: ref["ids_text_encoder_2_0"]!.array.map { Int($0) })
        let errors = [
            ("penultimate", scaleRelative(out.penultimate, ref["penultimate_heads4_0"]!)),
            ("last", scaleRelative(out.last, ref["last_heads4_0"]!)),
            ("text_embeds", scaleRelative(out.projected!, ref["text_embeds_heads4_0"]!)),
        ]
        print("[\(layout)] 4 heads: " + errors.map { "\($0.0) \(String(format: "%.2e", $0.1))" }.joined(separator: ", "))
        for (name, error) in errors { #expect(error <= TextEncoderReferenceTests.tolerance, "\(layout) \(name): \(error)") }
        // And the split matters: one head gives a different answer (of the same size: scaleRelative calls
        // outputs of different sizes infinitely far apart).
        let oneHead = ref["last_text_encoder_2_0"]!
        #expect(out.last.count == oneHead.count)
        #expect(scaleRelative(out.last, oneHead) > 1e-3)
    }
}
