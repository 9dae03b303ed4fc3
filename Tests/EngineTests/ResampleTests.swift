import Engine
import TestSupport
import XCTest

final class ResampleTests: XCTestCase {
    func testUpsampleCopiesEachPixelToA2x2Block() {
        let x = Tensor<Double>(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let y = Tensor<Double>(zeros: [1, 1, 4, 4])
        Upsample2x.forward(x: x, y: y)
        XCTAssertEqual(y.array, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    func testUpsampleBackwardFiniteDifferences() {
        var rng = TestRandom(seed: 50)
        let x = Checked("x", rng.tensor([2, 3, 3, 2]), rng: &rng)
        let c = rng.tensor([2, 3, 6, 4])
        let y = Tensor<Double>(zeros: [2, 3, 6, 4])
        checkGradients("Upsample2x", [x]) {
            Upsample2x.forward(x: x.value, y: y)
            return project(y, c)
        } backward: {
            Upsample2x.backward(dy: c, dx: x.grad)
        }
    }

    func testConcatOrderAndBackward() {
        var rng = TestRandom(seed: 51)
        let a = Checked("a", rng.tensor([2, 2, 3]), rng: &rng)
        let b = Checked("b", rng.tensor([2, 1, 3]), rng: &rng)
        let y = Tensor<Double>(zeros: [2, 3, 3])
        ChannelConcat.forward([a.value, b.value], y: y)
        XCTAssertEqual(Array(y.array[0..<6]), Array(a.value.array[0..<6]))
        XCTAssertEqual(Array(y.array[6..<9]), Array(b.value.array[0..<3]))
        XCTAssertEqual(Array(y.array[9..<15]), Array(a.value.array[6..<12]))
        let c = rng.tensor([2, 3, 3])
        checkGradients("ChannelConcat", [a, b]) {
            ChannelConcat.forward([a.value, b.value], y: y)
            return project(y, c)
        } backward: {
            ChannelConcat.backward(dy: c, dParts: [a.grad, b.grad], shapes: [a.value.shape, b.value.shape])
        }
    }
}
