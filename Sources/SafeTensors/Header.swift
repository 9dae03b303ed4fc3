import JSONOutput

/// A parsed and fully validated safetensors header (all seven checks of docs/formats.md, "The reader's checks").
public struct Header: Sendable {
    /// Largest header accepted, as the reference implementation: 100,000,000 bytes.
    public static let maxLength = 100_000_000

    /// `__metadata__` entries in file order.
    public let metadataEntries: [(key: String, value: String)]
    /// Tensors in data order (ascending offsets).
    public let tensors: [TensorInfo]
    /// Length of the JSON header in bytes (the u64 at the start of the file).
    public let length: Int
    private let indexByName: [String: Int]

    public var metadata: [String: String] {
        Dictionary(metadataEntries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
    /// File offset of the first data byte.
    public var dataStart: Int { 8 + length }
    /// Size of the data section.
    public var dataLength: Int { tensors.last?.end ?? 0 }
    public var fileLength: Int { dataStart + dataLength }

    public func tensor(named name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// Reads the 8-byte little-endian header length and checks it against the cap and the file size.
    public static func headerLength(prefix: [UInt8], fileSize: Int, file: String) throws -> Int {
        guard fileSize >= 8, prefix.count >= 8 else {
            throw SafeTensorsError(file: file, reason: .headerTooSmall(fileSize: fileSize))
        }
        var n: UInt64 = 0
        for i in (0..<8).reversed() { n = n << 8 | UInt64(prefix[i]) }
        if n > UInt64(maxLength) { throw SafeTensorsError(file: file, reason: .headerTooLarge(n)) }
        if Int(n) > fileSize - 8 {
            throw SafeTensorsError(file: file, reason: .headerPastEnd(headerLength: n, fileSize: fileSize))
        }
        return Int(n)
    }

    /// `headerLength(prefix:)` from the file's first bytes (up to `ForeignFormat.sniffLength`), naming a
    /// file of another known format as such instead of reporting its first bytes as a length.
    public static func headerLength(head: [UInt8], fileSize: Int, file: String) throws -> Int {
        do {
            return try headerLength(prefix: Array(head.prefix(8)), fileSize: fileSize, file: file)
        } catch {
            if let what = ForeignFormat.describe(head) { throw SafeTensorsError(file: file, reason: .foreignFormat(what)) }
            throw error
        }
    }

    /// Parses and validates the JSON header bytes of a file of `fileSize` bytes.
    public static func parse(json: [UInt8], fileSize: Int, file: String) throws -> Header {
        func fail(_ reason: SafeTensorsError.Reason, _ tensor: String? = nil) -> SafeTensorsError {
            SafeTensorsError(file: file, tensor: tensor, reason: reason)
        }
        guard String(validating: json, as: UTF8.self) != nil else { throw fail(.headerNotUTF8) }
        let root: JSONValue
        do { root = try JSONParser.parse(json) } catch let e as JSONParseError {
            throw fail(.headerNotJSON("\(e.message) at byte \(e.offset)"))
        }
        guard case let .object(members) = root else { throw fail(.headerNotObject) }

        var metadata: [(key: String, value: String)] = []
        var tensors: [TensorInfo] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(entries) = value else { throw fail(.metadataNotObject) }
                for (key, entry) in entries {
                    guard case let .string(text) = entry else { throw fail(.metadataValueNotString(key: key)) }
                    metadata.append((key, text))
                }
                continue
            }
            tensors.append(try parseTensor(name: name, value: value, file: file))
        }

        // Walk in offset order: contiguous from 0, no gap, no overlap (no polyglot files).
        tensors.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expectedBegin = 0
        for info in tensors {
            if info.begin != expectedBegin {
                let why = info.begin > expectedBegin
                    ? "gap: begins at \(info.begin), expected \(expectedBegin)"
                    : "overlap: begins at \(info.begin), before the previous tensor ends at \(expectedBegin)"
                throw fail(.offsetsInvalid(why), info.name)
            }
            expectedBegin = info.end
        }
        let expectedLength = 8 + json.count + expectedBegin
        if expectedLength != fileSize {
            throw fail(.lengthMismatch(expected: expectedLength, actual: fileSize))
        }
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        return Header(metadataEntries: metadata, tensors: tensors, length: json.count, indexByName: index)
    }

    private static func parseTensor(name: String, value: JSONValue, file: String) throws -> TensorInfo {
        func fail(_ reason: SafeTensorsError.Reason) -> SafeTensorsError {
            SafeTensorsError(file: file, tensor: name, reason: reason)
        }
        guard case let .object(fields) = value else { throw fail(.tensorEntryInvalid("not a JSON object")) }
        var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
        for (key, field) in fields {
            switch key {
            case "dtype": dtypeValue = field
            case "shape": shapeValue = field
            case "data_offsets": offsetsValue = field
            default: break  // the reference reader ignores unknown fields
            }
        }
        guard case let .string(dtypeName)? = dtypeValue else { throw fail(.tensorEntryInvalid("missing or non-string 'dtype'")) }
        guard let dtype = DType(rawValue: dtypeName) else { throw fail(.unknownDType(dtypeName)) }
        guard case let .array(dims)? = shapeValue else { throw fail(.tensorEntryInvalid("missing or non-array 'shape'")) }
        var shape: [Int] = []
        for dim in dims {
            guard case let .number(n) = dim, let v = n.unsignedValue, v <= UInt64(Int.max) else {
                throw fail(.tensorEntryInvalid("shape entries must be non-negative integers"))
            }
            shape.append(Int(v))
        }
        guard case let .array(offsets)? = offsetsValue, offsets.count == 2 else {
            throw fail(.tensorEntryInvalid("'data_offsets' must be an array of two integers"))
        }
        var bounds: [Int] = []
        for offset in offsets {
            guard case let .number(n) = offset, let v = n.unsignedValue, v <= UInt64(Int.max / 2) else {
                throw fail(.offsetsInvalid("offsets must be non-negative integers"))
            }
            bounds.append(Int(v))
        }
        guard bounds[1] >= bounds[0] else { throw fail(.offsetsInvalid("end \(bounds[1]) is before begin \(bounds[0])")) }
        switch checkedByteCount(shape: shape, dtype: dtype) {
        case let .failure(reason): throw fail(reason)
        case let .success(bytes):
            if bytes != bounds[1] - bounds[0] {
                throw fail(.sizeMismatch(expected: bytes, actual: bounds[1] - bounds[0]))
            }
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, begin: bounds[0], end: bounds[1])
    }
}
