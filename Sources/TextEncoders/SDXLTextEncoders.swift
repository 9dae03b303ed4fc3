import Foundation
import Engine
import SDXL
import Tokenizer

/// The two SDXL text encoders with their tokenizers: a prompt → the UNet's conditioning.
///
/// promptEmbeds = concat(penultimate(text_encoder), penultimate(text_encoder_2)) on the feature axis
/// [L, D1 + D2]; pooled = text_encoder_2's pooled output times text_projection [P].
public final class SDXLTextEncoders: @unchecked Sendable {
    public let encoder: CLIPTextEncoder
    public let encoder2: CLIPTextEncoder
    public let tokenizer: CLIPTokenizer
    public let tokenizer2: CLIPTokenizer

    public init(encoder: CLIPTextEncoder, encoder2: CLIPTextEncoder, tokenizer: CLIPTokenizer, tokenizer2: CLIPTokenizer) throws {
        guard encoder2.projection != nil else {
            throw TextEncoderError.missingWeight(encoder2.component, CLIPTextEncoder.Names.projection)
        }
        self.encoder = encoder
        self.encoder2 = encoder2
        self.tokenizer = tokenizer
        self.tokenizer2 = tokenizer2
    }

    /// Both encoders of `model` (either layout); the tokenizers come from diffusers `tokenizer/` and
    /// `tokenizer_2/` folders (a single-file checkpoint carries none).
    public convenience init(model: SDXLModel, tokenizerFolder: String, tokenizer2Folder: String) throws {
        try self.init(
            encoder: CLIPTextEncoder(model: model, component: .textEncoder),
            encoder2: CLIPTextEncoder(model: model, component: .textEncoder2),
            tokenizer: CLIPTokenizer(folder: tokenizerFolder), tokenizer2: CLIPTokenizer(folder: tokenizer2Folder))
    }

    /// Per-encoder outputs for a prompt (each tokenizer pads/truncates to its own max length).
    public func encodeEach(_ prompt: String) throws -> (CLIPTextOutput, CLIPTextOutput) {
        (try encoder.forward(ids: tokenizer.encode(prompt)), try encoder2.forward(ids: tokenizer2.encode(prompt)))
    }

    /// promptEmbeds [L, D1 + D2] (penultimate hidden states concatenated) and pooled [P].
    public func encode(_ prompt: String) throws -> (promptEmbeds: Tensor<Float>, pooled: Tensor<Float>) {
        let (a, b) = try encodeEach(prompt)
        return (try Self.concatenate(a.penultimate, b.penultimate), b.projected!)
    }

    /// [L, D1] ‖ [L, D2] → [L, D1 + D2].
    public static func concatenate(_ a: Tensor<Float>, _ b: Tensor<Float>) throws -> Tensor<Float> {
        guard a.rank == 2, b.rank == 2, a.shape[0] == b.shape[0] else {
            throw TextEncoderError.badInput("cannot concatenate \(a.shape) and \(b.shape) on the feature axis")
        }
        let l = a.shape[0], d1 = a.shape[1], d2 = b.shape[1]
        let out = Tensor<Float>(zeros: [l, d1 + d2])
        for t in 0..<l {
            (out.data + t * (d1 + d2)).update(from: a.data + t * d1, count: d1)
            (out.data + t * (d1 + d2) + d1).update(from: b.data + t * d2, count: d2)
        }
        return out
    }
}

extension SDXLTextEncoders {
    /// Both encoders of `model` with the tokenizers it ships (`tokenizer/`, `tokenizer_2/` of a diffusers
    /// folder), or tlkit's default CLIP vocabulary for a single-file checkpoint.
    public convenience init(model: SDXLModel) throws {
        let folder = URL(fileURLWithPath: model.path)
        let first = folder.appendingPathComponent("tokenizer").path, second = folder.appendingPathComponent("tokenizer_2").path
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: first, isDirectory: &isFolder), isFolder.boolValue {
            try self.init(model: model, tokenizerFolder: first, tokenizer2Folder: second)
            return
        }
        let (tokenizer, tokenizer2) = try DefaultVocabulary.sdxlTokenizers()
        try self.init(encoder: CLIPTextEncoder(model: model, component: .textEncoder),
                      encoder2: CLIPTextEncoder(model: model, component: .textEncoder2),
                      tokenizer: tokenizer, tokenizer2: tokenizer2)
    }

    /// SDXL's conditioning for a batch of one: hidden states [1, L, D1 + D2] and pooled [1, P]. The empty
    /// prompt is encoded too; SDXL's zeros for an absent negative prompt are the caller's choice
    /// (`force_zeros_for_empty_prompt` applies to negatives only).
    public func conditioning(_ prompt: String) throws -> (context: Tensor<Float>, pooled: Tensor<Float>) {
        let (embeds, pooled) = try encode(prompt)
        return (embeds.reshaped([1] + embeds.shape), pooled.reshaped([1, pooled.count]))
    }
}
