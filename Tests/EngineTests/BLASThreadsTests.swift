import BLASThreads
import CBLAS
import Dispatch
import XCTest

final class BLASThreadsTests: XCTestCase {
    /// Two overlapping serial sections: when the first ends, OpenBLAS stays on one thread for the second,
    /// which still runs its own threads' products; the count comes back when the last one ends.
    func testOverlappingSerialSectionsKeepOneThreadUntilTheLastEnds() {
        BLASThreads.set(3)
        defer { BLASThreads.set(ProcessInfo.processInfo.activeProcessorCount) }
        let secondStarted = DispatchSemaphore(value: 0), firstEnded = DispatchSemaphore(value: 0), secondEnded = DispatchSemaphore(value: 0)
        let insideSecond = Counts()
        DispatchQueue.global().async {
            BLASThreads.serial {
                secondStarted.signal()
                firstEnded.wait()
                insideSecond.values.append(openblas_get_num_threads())
            }
            secondEnded.signal()
        }
        BLASThreads.serial {
            secondStarted.wait()
            XCTAssertEqual(openblas_get_num_threads(), 1)
        }
        XCTAssertEqual(openblas_get_num_threads(), 1, "the second section still runs")
        firstEnded.signal()
        secondEnded.wait()
        XCTAssertEqual(insideSecond.values, [1])
        XCTAssertEqual(openblas_get_num_threads(), 3)
        // A count set during a section takes effect when it ends.
        BLASThreads.serial { BLASThreads.set(2); XCTAssertEqual(openblas_get_num_threads(), 1) }
        XCTAssertEqual(openblas_get_num_threads(), 2)
    }
}

/// What the other thread saw (written before it signals, read after the wait).
private final class Counts: @unchecked Sendable {
    var values: [Int32] = []
}
