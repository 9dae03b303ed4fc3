@testable import Engine
import XCTest

/// Large tensor buffers are kept after use and handed out again (TensorMemory); a reused buffer must read
/// as zeros like a fresh one, and the kept total must stay bounded.
final class TensorMemoryTests: XCTestCase {
    /// An element count no other test allocates (37 granules), so the buffer kept is ours.
    private let count = 37 * TensorMemory.granule / 4 - 1000

    func testAReusedBufferIsTheSameMemoryAndReadsAsZeros() {
        var first: Tensor<Float>? = Tensor<Float>(zeros: [count])
        let address = first!.data
        first!.fill(3.5)
        first = nil
        let second = Tensor<Float>(zeros: [count])
        XCTAssertEqual(second.data, address, "the kept buffer is handed out again")
        XCTAssertFalse((0..<count).contains { second[$0] != 0 }, "a reused buffer reads as zeros")
    }

    /// An uninitialised tensor takes a kept buffer as it is (no zero-fill: its operation writes every element).
    func testAnUninitialisedTensorReusesTheBufferWithoutClearingIt() {
        let n = count - 4096  // same granules as `count`, an element count no other test allocates
        var first: Tensor<Float>? = Tensor<Float>(zeros: [n])
        let address = first!.data
        first!.fill(2.25)
        first = nil
        let second = Tensor<Float>(uninitialized: [n])
        XCTAssertEqual(second.data, address)
        XCTAssertEqual(second[n - 1], 2.25, "left as the released tensor had it")
    }

    func testSmallTensorsAreNotKept() {
        TensorMemory.trim()
        do { let small = Tensor<Float>(zeros: [1000]); small.fill(1) }
        XCTAssertEqual(TensorMemory.cachedBytes, 0)
    }

    func testKeptBytesStayWithinTheLimitAndTrimReturnsThemAll() {
        TensorMemory.trim()
        // Two untouched buffers of 1.1 GB each: mapping costs nothing until written.
        let big = (TensorMemory.cachedLimit / 2 + TensorMemory.granule * 50) / 4
        do {  // both released at the end of the scope: 2.2 GB offered to a 2 GB cache
            let a = Tensor<Float>(zeros: [big]), b = Tensor<Float>(zeros: [big])
            XCTAssertNotEqual(a.data, b.data)
        }
        XCTAssertGreaterThan(TensorMemory.cachedBytes, 0)
        XCTAssertLessThanOrEqual(TensorMemory.cachedBytes, TensorMemory.cachedLimit, "the oldest is released first")
        TensorMemory.trim()
        XCTAssertEqual(TensorMemory.cachedBytes, 0)
    }

    /// The busiest-moment record counts a reused buffer once: in use, no longer kept.
    func testThePeakCountsAReusedBufferOnce() {
        TensorMemory.trim()
        TensorMemory.resetPeak()
        let base = TensorMemory.peakBytes.total
        var a: Tensor<Float>? = Tensor<Float>(zeros: [3 * TensorMemory.granule / 4])  // 3 granules
        a = nil
        XCTAssertNil(a)
        let b = Tensor<Float>(zeros: [3 * TensorMemory.granule / 4])  // the kept buffer again
        XCTAssertEqual(b.count, 3 * TensorMemory.granule / 4)
        XCTAssertEqual(TensorMemory.peakBytes.total, base + 3 * TensorMemory.granule)
        XCTAssertEqual(TensorMemory.peakBytes.kept, 0)
        TensorMemory.trim()
    }

    func testLoweringTheLimitReleasesTheOldestAtOnce() {
        TensorMemory.trim()
        let saved = TensorMemory.cachedLimit
        defer { TensorMemory.cachedLimit = saved }
        var a: Tensor<Float>? = Tensor<Float>(zeros: [3 * TensorMemory.granule / 4])
        var b: Tensor<Float>? = Tensor<Float>(zeros: [5 * TensorMemory.granule / 4])
        a = nil
        b = nil
        XCTAssertNil(a ?? b)
        XCTAssertEqual(TensorMemory.cachedBytes, 8 * TensorMemory.granule)
        TensorMemory.cachedLimit = 6 * TensorMemory.granule
        XCTAssertEqual(TensorMemory.cachedBytes, 5 * TensorMemory.granule, "a (3 granules, released first) is unmapped")
        TensorMemory.trim()
    }
}
