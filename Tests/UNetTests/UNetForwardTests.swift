import Adapters
import Engine
import TestSupport
import Testing
@testable import UNet

/// The fixture UNet against diffusers' outputs (Fixtures/reference/unet_outputs.safetensors).
@Suite struct UNetForwardTests {
    static let layouts = ["folder", "single-file"]

    @Test(arguments: layouts)
    func baseOutputsMatchDiffusers(layout: String) throws {
        let unet = try Reference.unet(layout)
        let x = try Reference.inputs()
        let reference = try Reference.tensors("reference/unet_outputs.safetensors")
        #expect(unet.adaptableModules.count == 176)  // 22 transformer blocks × 2 attentions × 4 projections
        for t in Reference.timesteps {
            let out = try unet.forward(latents: x.latents, timestep: t, context: x.context,
                                       textEmbeds: x.textEmbeds, timeIds: x.timeIds)
            let err = scaleRelative(out, reference["base/t\(Int(t))"]!)
            print("UNet \(layout) base t=\(Int(t)): max|a-b|/max|b| = \(err)")
            #expect(err <= 1e-4, "base t=\(t): \(err)")
        }
    }

    @Test(arguments: layouts, ["peft", "official-ortho", "official-vanilla"])
    func adapterOutputsMatchDiffusers(layout: String, adapterID: String) throws {
        let unet = try Reference.unet(layout)
        let x = try Reference.inputs()
        let reference = try Reference.tensors("reference/unet_outputs.safetensors")
        let adapter = try UNetAdapter(try AdapterReader.read(Reference.path(Reference.adapters[adapterID]!)))
        let report = unet.report(adapter)
        #expect(report.applied.count == 176 && report.unused.isEmpty, "\(report.unused)")
        for t in Reference.timesteps {
            let out = try unet.forward(latents: x.latents, timestep: t, context: x.context,
                                       textEmbeds: x.textEmbeds, timeIds: x.timeIds, adapter: adapter)
            let b = reference["\(adapterID)/t\(Int(t))"]!, base = reference["base/t\(Int(t))"]!
            let err = scaleRelative(out, b)
            let effect = Reference.effectRelative(out, b, base: base)
            print("UNet \(layout) \(adapterID) t=\(Int(t)): max|a-b|/max|b| = \(err), |a-b|/|b-base| = \(effect)")
            #expect(err <= 1e-4, "\(adapterID) t=\(t): \(err)")
            #expect(effect <= 1e-4, "\(adapterID) t=\(t) relative to the effect: \(effect)")
        }
    }

    /// The official fixtures (max rank 8, min rank 4) keep 4 / 6 / 8 components at t = 999 / 500 / 0.
    @Test func scheduledMaskFollowsTimestep() throws {
        let adapter = try UNetAdapter(try AdapterReader.read(Reference.path(Reference.adapters["official-ortho"]!)))
        let module = try #require(adapter.modules.values.first)
        #expect([999.0, 500, 0].map { adapter.active(module, at: $0) } == [4, 6, 8])
        let peft = try UNetAdapter(try AdapterReader.read(Reference.path(Reference.adapters["peft"]!)))
        for m in peft.modules.values { #expect(peft.active(m, at: 999) == m.rank) }
    }

    /// A batch of two (the reference input and a scaled copy) equals two batch-of-one runs.
    @Test func batchItemsAreIndependent() throws {
        let unet = try Reference.unet("folder")
        let x = try Reference.inputs()
        let reference = try Reference.tensors("reference/unet_outputs.safetensors")
        let adapter = try UNetAdapter(try AdapterReader.read(Reference.path(Reference.adapters["official-ortho"]!)))
        let second = Tensor<Float>(shape: x.latents.shape) { 0.5 * x.latents[$0] }
        func stacked(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Tensor<Float> {
            Tensor(shape: [2] + a.shape.dropFirst(), values: a.array + b.array)
        }
        let both = try unet.forward(latents: stacked(x.latents, second), timestep: 500, context: stacked(x.context, x.context),
                                    textEmbeds: stacked(x.textEmbeds, x.textEmbeds), timeIds: stacked(x.timeIds, x.timeIds),
                                    adapter: adapter)
        let alone = try unet.forward(latents: second, timestep: 500, context: x.context, textEmbeds: x.textEmbeds,
                                     timeIds: x.timeIds, adapter: adapter)
        let first = scaleRelative(both.batch(0).reshaped([1, 4, 16, 16]), reference["official-ortho/t500"]!)
        let other = scaleRelative(both.batch(1).reshaped([1, 4, 16, 16]), alone)
        print("UNet batch of 2: item 0 vs reference \(first), item 1 vs alone \(other)")
        #expect(first <= 1e-4)
        #expect(other <= 1e-5)
    }

    @Test func rejectsMisshapenInputs() throws {
        let unet = try Reference.unet("folder")
        let x = try Reference.inputs()
        #expect(throws: UNetError.self) {
            try unet.forward(latents: Tensor(zeros: [1, 4, 15, 16]), timestep: 1, context: x.context,
                             textEmbeds: x.textEmbeds, timeIds: x.timeIds)
        }
        #expect(throws: UNetError.self) {
            try unet.forward(latents: x.latents, timestep: 1, context: Tensor(zeros: [1, 77, 64]),
                             textEmbeds: x.textEmbeds, timeIds: x.timeIds)
        }
    }
}
