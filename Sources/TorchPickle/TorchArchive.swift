import SafeTensors

/// A `torch.save` file (zip with `data.pkl` and `data/<key>` storages) read without unpickling it: the
/// pickle is interpreted by `RestrictedUnpickler`, tensors are copied out of their storages, and the
/// result is offered as an in-memory safetensors file so every reader downstream is the usual one.
public struct TorchArchive {
    public struct Tensor {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Contiguous little-endian elements.
        public let data: [UInt8]
    }

    public let tensors: [Tensor]
    /// Leaves that are not tensors (plain numbers, strings), named so callers can say what was left out.
    public let skipped: [String]

    public init(bytes: [UInt8]) throws {
        let zip = try StoredZip(bytes)
        let pickles = zip.entries.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }
        guard pickles.count == 1, let pickle = pickles.first else {
            throw TorchPickleError("not a torch.save archive (expected one <name>/data.pkl, found \(pickles.count))")
        }
        let prefix = String(pickle.dropLast("data.pkl".count))
        if let order = zip.data(prefix + "byteorder"), String(decoding: order, as: UTF8.self) != "little" {
            throw TorchPickleError("big-endian torch archives are not supported")
        }
        let root = try RestrictedUnpickler.load(zip.data(pickle)!)
        var tensors: [Tensor] = [], skipped: [String] = []
        try TorchArchive.flatten(root, name: "", depth: 0) { name, value in
            guard case let .tensor(t) = value else { skipped.append(name); return }
            guard let storage = zip.data(prefix + "data/" + t.storage.key) else {
                throw TorchPickleError("tensor \(name): its storage data/\(t.storage.key) is missing from the archive")
            }
            tensors.append(Tensor(name: name, dtype: TorchArchive.dtype(t.storage.dtype), shape: t.shape,
                                  data: try TorchArchive.gather(t, from: storage, name: name)))
        }
        guard Set(tensors.map(\.name)).count == tensors.count else { throw TorchPickleError("two tensors share a name") }
        self.tensors = tensors
        self.skipped = skipped
    }

    /// Visits the leaves of nested dicts (keys joined with '.'); lists and tuples are not tensor maps.
    static func flatten(_ value: PickleValue, name: String, depth: Int, _ visit: (String, PickleValue) throws -> Void) throws {
        guard depth < 32 else { throw TorchPickleError("dicts nested more than 32 deep") }
        guard case let .dict(dict) = value else {
            if name.isEmpty { throw TorchPickleError("the archive holds no dict of tensors") }
            try visit(name, value)
            return
        }
        for (key, item) in dict.items {
            let part: String
            switch key {
            case let .string(s): part = s
            case let .int(n): part = String(n)
            default: throw TorchPickleError("a dict key that is neither a string nor an integer under '\(name)'")
            }
            try flatten(item, name: name.isEmpty ? part : name + "." + part, depth: depth + 1, visit)
        }
    }

    static func dtype(_ t: TorchDType) -> DType {
        switch t {
        case .float32: return .f32
        case .float16: return .f16
        case .bfloat16: return .bf16
        case .float64: return .f64
        case .int64: return .i64
        case .int32: return .i32
        case .int16: return .i16
        case .int8: return .i8
        case .uint8: return .u8
        case .bool: return .bool
        }
    }

    /// The tensor's elements in row-major order, checked to lie inside the storage.
    static func gather(_ t: TensorRef, from storage: ArraySlice<UInt8>, name: String) throws -> [UInt8] {
        let size = t.storage.dtype.byteSize
        let available = storage.count / size
        var count = 1, last = t.offset
        for (n, s) in zip(t.shape, t.stride) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            let (reach, o2) = (n == 0 ? 0 : n - 1).multipliedReportingOverflow(by: s)
            let (l, o3) = last.addingReportingOverflow(reach)
            guard !o1, !o2, !o3 else { throw TorchPickleError("tensor \(name): shape \(t.shape) overflows") }
            count = c
            last = l
        }
        guard count == 0 || last < available else {
            throw TorchPickleError("tensor \(name): shape \(t.shape), stride \(t.stride) reaches past its storage of \(available) elements")
        }
        var out = [UInt8](repeating: 0, count: count * size)
        guard count > 0 else { return out }
        var index = [Int](repeating: 0, count: t.shape.count)
        let base = storage.startIndex
        for element in 0..<count {
            var source = t.offset
            for d in 0..<index.count { source += index[d] * t.stride[d] }
            for b in 0..<size { out[element * size + b] = storage[base + source * size + b] }
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < t.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// The tensors as an in-memory safetensors file named `name`.
    public func safeTensors(name: String) throws -> SafeTensorsFile {
        let specs = tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        let (header, layout) = try SafeTensorsWriter.header(metadata: [:], tensors: specs, file: name)
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        var bytes = header
        for info in layout { bytes += byName[info.name]!.data }
        return try SafeTensorsFile.parse(bytes: bytes, name: name)
    }
}
