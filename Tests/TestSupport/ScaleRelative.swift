import Engine

/// The scale-relative error max|a − b| / max|b| that the tolerances of docs/contract.md ("Tolerances")
/// are stated in; max|a − b| itself when b is all zeros. Inputs of different sizes are infinitely far
/// apart, so a comparison of mismatched outputs fails instead of trapping.
public func scaleRelative<A: Collection, B: Collection>(_ a: A, _ b: B) -> Double
where A.Element: BinaryFloatingPoint, B.Element == A.Element {
    guard a.count == b.count else { return .infinity }
    var diff = 0.0, scale = 0.0
    for (x, y) in zip(a, b) {
        diff = max(diff, abs(Double(x) - Double(y)))
        scale = max(scale, abs(Double(y)))
    }
    return scale == 0 ? diff : diff / scale
}

/// The same for tensors, element by element in memory order (a reference may be stored in another shape
/// of the same size, e.g. without the batch axis).
public func scaleRelative<T: Scalar>(_ a: Tensor<T>, _ b: Tensor<T>) -> Double {
    return scaleRelative(UnsafeBufferPointer(start: a.data, count: a.count), UnsafeBufferPointer(start: b.data, count: b.count))
}
