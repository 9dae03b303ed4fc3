import Engine
import SDXL
import TestSupport
import Testing
import TextEncoders
import Tokenizer

/// A single-file checkpoint has no tokenizer folders: the encoders fall back to tlkit's shipped vocabulary
/// and give the same conditioning as the diffusers folder with its own tokenizers.
@Suite struct DefaultVocabularyTests {
    @Test func singleFileUsesTheShippedVocabulary() throws {
        let folder = try SDXLTextEncoders(model: try SDXLModel.open(Reference.path("models/tiny-sdxl")))
        let single = try SDXLTextEncoders(model: try SDXLModel.open(Reference.path("models/tiny-sdxl.safetensors")))
        for prompt in ["a photo of sks dog", "", "crème brûlée 😀"] {
            #expect(single.tokenizer.encode(prompt) == folder.tokenizer.encode(prompt))
            #expect(single.tokenizer2.encode(prompt) == folder.tokenizer2.encode(prompt), "second tokenizer pads with !")
            let a = try single.conditioning(prompt), b = try folder.conditioning(prompt)
            #expect(a.context.shape == [1, 77, 128] && a.pooled.shape == [1, 64])
            // Same weights and ids; not bitwise, because concurrently running suites may change BLAS's thread count.
            let err = max(scaleRelative(a.context, b.context), scaleRelative(a.pooled, b.pooled))
            #expect(err <= 1e-6, "\(prompt): \(err)")
        }
    }

    @Test func theVocabularyIsFoundNextToTheBinary() throws {
        // The build copies the resource bundle beside the test binary; the source tree is the last resort.
        let path = try DefaultVocabulary.path()
        #expect(path.hasSuffix(DefaultVocabulary.fileName))
        #expect(path.contains("tlkit_Tokenizer.resources"), "found \(path)")
    }
}
