import Engine
import Foundation
import XCTest

final class EmbeddingTests: XCTestCase {
    /// t = 0: every argument is 0, so the flipped layout is [cos = 1 …, sin = 0 …].
    func testTimestepZero() {
        let e = TimestepEmbedding.forward(timesteps: [0], dim: 8, as: Double.self)
        XCTAssertEqual(e.array, [1, 1, 1, 1, 0, 0, 0, 0])
    }

    /// Independent Double evaluation of the formula; the engine rounds each
    /// step to Float as torch does, so the tolerance is Float-sized relative
    /// to the largest argument (t · freq₀ = t).
    func testKnownTimestep() {
        let t = 981.0, dim = 320, half = 160
        let e = TimestepEmbedding.forward(timesteps: [Float(t), 1], dim: dim, as: Double.self)
        var worst = 0.0
        for i in 0..<half {
            let freq = exp(-log(10000.0) * Double(i) / Double(half))
            for (row, time) in [(0, t), (1, 1.0)] {
                worst = max(worst, abs(e[row * dim + i] - cos(time * freq)))
                worst = max(worst, abs(e[row * dim + half + i] - sin(time * freq)))
            }
        }
        print("TimestepEmbedding max abs error vs Double formula \(worst)")
        XCTAssertLessThanOrEqual(worst, 2 * t * Double(Float.ulpOfOne))
        // A spot value that a sin/cos swap or a wrong exponent would change.
        XCTAssertEqual(e[0 * dim + 1], cos(981 * exp(-log(10000.0) / 160)), accuracy: 1e-3)
    }

    func testUnflippedAndOddDimension() {
        let e = TimestepEmbedding.forward(timesteps: [2], dim: 5, flipSinToCos: false, as: Double.self)
        XCTAssertEqual(e.shape, [1, 5])
        XCTAssertEqual(e[0], sin(2.0), accuracy: 1e-6)
        XCTAssertEqual(e[2], cos(2.0), accuracy: 1e-6)
        XCTAssertEqual(e[1], sin(2 * exp(-log(10000.0) / 2)), accuracy: 1e-6)
        XCTAssertEqual(e[4], 0)
    }
}
