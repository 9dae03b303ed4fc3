import Engine
import Testing
@testable import Training

/// `--recompute auto`: recomputation only when the estimate with its margin exceeds the memory available.
@Suite struct MemoryEstimateTests {
    static let gb = 1 << 30

    @Test func recomputesOnlyWhenTheEstimateDoesNotFit() {
        let fits = MemoryEstimate(weights: 5 * Self.gb, adapter: Self.gb, activations: 4 * Self.gb, available: 20 * Self.gb)
        #expect(fits.recompute(.auto).on == false)
        let tight = MemoryEstimate(weights: 5 * Self.gb, adapter: Self.gb, activations: 12 * Self.gb, available: 14 * Self.gb)
        #expect(tight.recompute(.auto).on == true)
        #expect(tight.recompute(.auto).why.contains("available"))
        #expect(fits.recompute(.on).on == true && tight.recompute(.off).on == false)
        let unknown = MemoryEstimate(weights: 0, adapter: 0, activations: 40 * Self.gb, available: nil)
        #expect(unknown.recompute(.auto).on == false)
    }

    /// The freed tensor buffers kept for reuse count in the margin: an estimate that would fit with only
    /// a gigabyte to spare does not once they are counted.
    @Test func theMarginCountsTheKeptTensorBuffers() {
        let activations = 8 * Self.gb, adapter = Self.gb
        let withoutKept = activations + adapter + Self.gb + activations / 4
        let estimate = MemoryEstimate(weights: 0, adapter: adapter, activations: activations,
                                      available: withoutKept + TensorMemory.cachedLimit / 2)
        #expect(TensorMemory.cachedLimit > 0)
        #expect(estimate.recompute(.auto).on == true)
    }
}
