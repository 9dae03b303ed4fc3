import Foundation
import Sampling
import TestSupport
import Testing

@Suite struct SchedulerTests {
    @Test(arguments: [25, 30, 50, 7, 1])
    func timestepsAndSigmasEqualDiffusers(steps: Int) throws {
        let config = try SchedulerConfig(contentsOf: Reference.path("models/tiny-sdxl/scheduler/scheduler_config.json"))
        #expect(config == .sdxl)
        let scheduler = try EulerDiscreteScheduler(config: config, steps: steps)
        let timesteps = Reference.outputs["scheduler/\(steps)/timesteps"]!.array
        let sigmas = Reference.outputs["scheduler/\(steps)/sigmas"]!.array
        #expect(scheduler.timesteps == timesteps)
        let err = scaleRelative(scheduler.sigmas, sigmas)
        let noiseErr = scaleRelative([scheduler.initNoiseSigma], Reference.outputs["scheduler/\(steps)/init_noise_sigma"]!.array)
        print("scheduler \(steps) steps: sigmas \(err), init_noise_sigma \(noiseErr)")
        #expect(err <= 1e-6)
        #expect(noiseErr <= 1e-6)
        #expect(scheduler.sigmas.last == 0)
    }

    @Test func alphasCumprodEqualTorch() throws {
        let scheduler = try EulerDiscreteScheduler(steps: 25)
        let err = scaleRelative(scheduler.alphasCumprod, Reference.outputs["scheduler/alphas_cumprod"]!.array)
        print("scheduler alphas_cumprod: \(err)")
        #expect(err <= 1e-6)
    }

    @Test func leadingSpacingTimestepsOf25Steps() throws {
        let t = try EulerDiscreteScheduler(steps: 25).timesteps
        #expect(t.first == 961 && t.last == 1 && t.count == 25)
    }

    @Test func unsupportedSettingsAreErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tlkit-sched-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("scheduler_config.json")
        try Data(#"{"beta_schedule": "linear", "timestep_spacing": "leading"}"#.utf8).write(to: file)
        #expect(throws: SamplingError.self) { try SchedulerConfig(contentsOf: file.path) }
        try Data(#"{"use_karras_sigmas": true}"#.utf8).write(to: file)
        #expect(throws: SamplingError.self) { try SchedulerConfig(contentsOf: file.path) }
        #expect(throws: SamplingError.self) { try EulerDiscreteScheduler(steps: 0) }
    }
}

@Suite struct TorchRandomTests {
    @Test(arguments: [("seed42_1x4x8x8", UInt64(42)), ("seed7_2x4x8x8", 7), ("seed12345_3x5x7", 12345),
                      ("seed4294967297_1x4x4x4", 4_294_967_297)])
    func normalsEqualTorchRandn(key: String, seed: UInt64) throws {
        let reference = Reference.outputs["randn/\(key)"]!.array
        var generator = TorchRandom(seed: seed)
        let values = try generator.normals(count: reference.count)
        let err = scaleRelative(values, reference)
        print("torch.randn \(key): \(err)")
        #expect(err <= 1e-6)
    }

    @Test func fewerThan16ValuesAreRefused() {
        var generator = TorchRandom(seed: 1)
        #expect(throws: SamplingError.self) { try generator.normals(count: 15) }
    }
}
