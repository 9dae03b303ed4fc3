import Engine
import SafeTensors
import TextEncoders

/// The text conditioning of one prompt for classifier-free guidance, as diffusers' SDXL pipeline names it.
///
/// promptEmbeds, negativePromptEmbeds [L, D] (both text encoders' penultimate states concatenated);
/// pooled, negativePooled [P] (text_encoder_2's projected pooled output).
public struct Conditioning: @unchecked Sendable {
    public var promptEmbeds: Tensor<Float>
    public var pooled: Tensor<Float>
    public var negativePromptEmbeds: Tensor<Float>
    public var negativePooled: Tensor<Float>

    public init(promptEmbeds: Tensor<Float>, pooled: Tensor<Float>, negativePromptEmbeds: Tensor<Float>, negativePooled: Tensor<Float>) throws {
        guard promptEmbeds.rank == 2, pooled.rank == 1 else {
            throw SamplingError.badInput("prompt embeddings \(promptEmbeds.shape) and pooled \(pooled.shape): want [L, D] and [P]")
        }
        guard negativePromptEmbeds.shape == promptEmbeds.shape, negativePooled.shape == pooled.shape else {
            throw SamplingError.badInput("negative embeddings \(negativePromptEmbeds.shape), \(negativePooled.shape) differ from the prompt's \(promptEmbeds.shape), \(pooled.shape)")
        }
        self.promptEmbeds = promptEmbeds
        self.pooled = pooled
        self.negativePromptEmbeds = negativePromptEmbeds
        self.negativePooled = negativePooled
    }

    /// Encodes `prompt`; a nil `negative` gives zero negative embeddings (SDXL's
    /// `force_zeros_for_empty_prompt`), while any string, even "", is encoded, as diffusers does.
    public init(encoders: SDXLTextEncoders, prompt: String, negative: String?) throws {
        let (embeds, pooled) = try encoders.encode(prompt)
        let (negativeEmbeds, negativePooled): (Tensor<Float>, Tensor<Float>)
        if let negative {
            (negativeEmbeds, negativePooled) = try encoders.encode(negative)
        } else {
            (negativeEmbeds, negativePooled) = (Tensor(zeros: embeds.shape), Tensor(zeros: pooled.shape))
        }
        try self.init(promptEmbeds: embeds, pooled: pooled, negativePromptEmbeds: negativeEmbeds, negativePooled: negativePooled)
    }

    /// Tensor names of an embeddings file (diffusers' argument names).
    public static let fileKeys = ["prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds", "negative_pooled_prompt_embeds"]

    /// Reads an embeddings file: `prompt_embeds` [1, L, D] or [L, D], `pooled_prompt_embeds` [1, P] or
    /// [P], and the two negative tensors of the same shapes; without the negative pair they are zeros,
    /// as diffusers does when no negative prompt is given.
    public init(file path: String) throws {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile.open(path) } catch { throw SamplingError.badInput("\(path): \(error)") }
        func tensor(_ name: String, rank: Int) throws -> Tensor<Float>? {
            guard let info = file.header.tensor(named: name) else { return nil }
            var shape = info.shape
            if shape.count == rank + 1, shape[0] == 1 { shape.removeFirst() }
            guard shape.count == rank, info.dtype.isConvertibleToFloat else {
                throw SamplingError.badInput("\(path): \(name) is \(info.dtype.rawValue) \(info.shape), want a float tensor of \(rank == 2 ? "[1, L, D]" : "[1, P]") for one prompt")
            }
            return Tensor(shape: shape, values: try file.floats(info))
        }
        guard let embeds = try tensor("prompt_embeds", rank: 2), let pooled = try tensor("pooled_prompt_embeds", rank: 1) else {
            throw SamplingError.badInput("\(path): an embeddings file needs prompt_embeds and pooled_prompt_embeds")
        }
        let negative = try tensor("negative_prompt_embeds", rank: 2), negativePooled = try tensor("negative_pooled_prompt_embeds", rank: 1)
        guard (negative == nil) == (negativePooled == nil) else {
            throw SamplingError.badInput("\(path): negative_prompt_embeds and negative_pooled_prompt_embeds come together")
        }
        do {
            try self.init(promptEmbeds: embeds, pooled: pooled, negativePromptEmbeds: negative ?? Tensor(zeros: embeds.shape),
                          negativePooled: negativePooled ?? Tensor(zeros: pooled.shape))
        } catch let error as SamplingError {
            throw SamplingError.badInput("\(path): \(error)")
        }
    }
}
