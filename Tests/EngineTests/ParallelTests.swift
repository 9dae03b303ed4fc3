import Engine
import XCTest

final class ParallelTests: XCTestCase {
    /// Every index is visited exactly once, whatever the split.
    func testForEachCoversRangeOnce() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            XCTAssertEqual(Parallel.threads, threads)
            for count in [0, 1, 7, 1000] {
                let hits = Tensor<Double>(zeros: [max(count, 1)])
                Parallel.forEach(count, grain: 3) { r in
                    for i in r { hits[i] += 1 }
                }
                for i in 0..<count { XCTAssertEqual(hits[i], 1, "threads \(threads) count \(count) index \(i)") }
            }
        }
    }
}
