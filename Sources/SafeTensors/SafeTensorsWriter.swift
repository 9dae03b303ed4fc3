import JSONOutput

/// What a tensor will be in the file being written.
public struct TensorSpec: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}

/// Streams a safetensors file one tensor at a time: the header is written first (it starts with `{` and
/// is padded with spaces so data starts 8-aligned), tensors follow in the order of `layout`
/// (descending alignment, then name, so each is naturally aligned), and `finish()` renames the
/// temporary file into place. The whole file is never held in memory.
public final class SafeTensorsWriter {
    public let layout: [TensorInfo]
    private let output: AtomicOutput
    private var next = 0
    private let headerLength: Int
    private let specs: [TensorSpec]

    /// Whether `replaceMetadata` can work (files can; standard output, devices and FIFOs cannot).
    public var canReplaceMetadata: Bool { output.isRewritable }

    public init(path: String, metadata: [String: String], tensors: [TensorSpec]) throws {
        let (header, layout) = try SafeTensorsWriter.header(metadata: metadata, tensors: tensors, file: path)
        self.layout = layout
        self.headerLength = header.count
        self.specs = tensors
        output = try AtomicOutput(path)
        do { try output.write(header) } catch { output.abandon(); throw error }
    }

    /// The serialized header (length prefix included) and the tensors' placement.
    public static func header(metadata: [String: String], tensors: [TensorSpec], file: String = "<output>") throws -> ([UInt8], [TensorInfo]) {
        var names = Set<String>()
        for spec in tensors where !names.insert(spec.name).inserted || spec.name == "__metadata__" {
            throw SafeTensorsError(file: file, tensor: spec.name, reason: .writerMisuse("duplicate or reserved tensor name"))
        }
        let ordered = tensors.sorted { a, b in
            a.dtype.alignment != b.dtype.alignment ? a.dtype.alignment > b.dtype.alignment : a.name < b.name
        }
        var layout: [TensorInfo] = []
        var offset = 0
        for spec in ordered {
            guard case let .success(size) = checkedByteCount(shape: spec.shape, dtype: spec.dtype) else {
                throw SafeTensorsError(file: file, tensor: spec.name, reason: .sizeOverflow)
            }
            layout.append(TensorInfo(name: spec.name, dtype: spec.dtype, shape: spec.shape, begin: offset, end: offset + size))
            offset += size
        }
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0]!))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        for info in layout {
            if !first { json += "," }
            first = false
            json += "\(JSONText.quote(info.name)):{\"dtype\":\"\(info.dtype.rawValue)\",\"shape\":[\(info.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(info.begin),\(info.end)]}"
        }
        json += "}"
        var bytes = Array(json.utf8)
        while bytes.count % 8 != 0 { bytes.append(0x20) }
        guard bytes.count <= Header.maxLength else {
            throw SafeTensorsError(file: file, reason: .headerTooLarge(UInt64(bytes.count)))
        }
        var prefix = [UInt8](repeating: 0, count: 8)
        var n = UInt64(bytes.count)
        for i in 0..<8 { prefix[i] = UInt8(n & 0xFF); n >>= 8 }
        return (prefix + bytes, layout)
    }

    /// The tensor the writer expects next, or nil when all were written.
    public var nextTensor: TensorInfo? { next < layout.count ? layout[next] : nil }

    /// Writes the next tensor's bytes; `name` must be the next in `layout` order.
    public func write(_ name: String, bytes: UnsafeRawBufferPointer) throws {
        guard let expected = nextTensor else {
            throw SafeTensorsError(file: output.destination, tensor: name, reason: .writerMisuse("all tensors were already written"))
        }
        guard expected.name == name else {
            throw SafeTensorsError(file: output.destination, tensor: name, reason: .writerMisuse("expected tensor '\(expected.name)' next"))
        }
        guard bytes.count == expected.byteCount else {
            throw SafeTensorsError(file: output.destination, tensor: name, reason: .sizeMismatch(expected: expected.byteCount, actual: bytes.count))
        }
        try output.write(bytes)
        next += 1
    }

    public func write(_ name: String, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(name, bytes: $0) }
    }

    /// Writes Float32 values converted to the tensor's declared dtype.
    public func write(_ name: String, floats: [Float]) throws {
        guard let expected = nextTensor, expected.name == name else {
            throw SafeTensorsError(file: output.destination, tensor: name, reason: .writerMisuse("expected tensor '\(nextTensor?.name ?? "none")' next"))
        }
        try write(name, bytes: FloatConversion.fromFloat32(floats, dtype: expected.dtype))
    }

    /// Rewrites the header with final metadata of the same serialized length (values such as hashes of
    /// the data, written as placeholders of the same length before the data was known).
    public func replaceMetadata(_ metadata: [String: String]) throws {
        let (header, _) = try SafeTensorsWriter.header(metadata: metadata, tensors: specs, file: output.destination)
        guard header.count == headerLength else {
            throw SafeTensorsError(file: output.destination, reason: .writerMisuse("replacement header is \(header.count) bytes, not \(headerLength)"))
        }
        try output.overwrite(header, at: 0)
    }

    /// Checks every tensor was written, then moves the file into place.
    public func finish() throws {
        if let missing = nextTensor {
            output.abandon()
            throw SafeTensorsError(file: output.destination, tensor: missing.name, reason: .writerMisuse("finished before every tensor was written"))
        }
        try output.commit()
    }

    public func abandon() { output.abandon() }
}

extension SafeTensorsWriter {
    /// Writes a whole file from tensors produced on demand, in file order; `produce` is called once per tensor.
    public static func write(to path: String, metadata: [String: String], tensors: [TensorSpec],
                             produce: (TensorInfo) throws -> [UInt8]) throws {
        let writer = try SafeTensorsWriter(path: path, metadata: metadata, tensors: tensors)
        do {
            for info in writer.layout { try writer.write(info.name, bytes: try produce(info)) }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
    }
}
