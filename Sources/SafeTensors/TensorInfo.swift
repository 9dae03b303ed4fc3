/// One tensor entry of a safetensors header. Offsets are relative to the start of the data section.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let begin: Int
    public let end: Int

    public init(name: String, dtype: DType, shape: [Int], begin: Int, end: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end
    }

    public var byteCount: Int { end - begin }
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Byte size of `shape` × `dtype` with overflow checks; nil when it overflows or is not a whole byte count.
func checkedByteCount(shape: [Int], dtype: DType) -> Result<Int, SafeTensorsError.Reason> {
    var elements = 1
    for dim in shape {
        let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
        if overflow { return .failure(.sizeOverflow) }
        elements = product
    }
    let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitSize)
    if overflow { return .failure(.sizeOverflow) }
    if bits % 8 != 0 { return .failure(.misalignedSubByte) }
    return .success(bits / 8)
}
