/// The values the restricted reader builds: plain data, containers, and descriptions of tensors. No value
/// is ever a callable; the few allowed globals are names that the reader itself interprets.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(AllowedGlobal)
    case storage(StorageRef)
    case tensor(TensorRef)
}

/// Lists and dicts are shared by reference, as in pickle's memo.
final class PickleList { var items: [PickleValue] = [] }
final class PickleDict { var items: [(key: PickleValue, value: PickleValue)] = [] }

/// A storage named by a persistent id: its element type and its entry under `data/`.
struct StorageRef {
    let dtype: TorchDType
    let key: String
}

/// A tensor view of a storage, as `torch._utils._rebuild_tensor_v2` would make it.
struct TensorRef {
    let storage: StorageRef
    let offset: Int
    let shape: [Int]
    let stride: [Int]
}

/// Element types of torch storages this reader accepts.
enum TorchDType: String {
    case float32 = "FloatStorage", float16 = "HalfStorage", bfloat16 = "BFloat16Storage", float64 = "DoubleStorage"
    case int64 = "LongStorage", int32 = "IntStorage", int16 = "ShortStorage", int8 = "CharStorage", uint8 = "ByteStorage"
    case bool = "BoolStorage"

    var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }
}

/// The only globals a file may name. Anything else (os.system, builtins.eval, any class) is refused the
/// moment the pickle names it.
enum AllowedGlobal {
    case orderedDict
    case rebuildTensor
    case rebuildParameter
    case storageType(TorchDType)

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch", _):
            guard let dtype = TorchDType(rawValue: name) else { return nil }
            self = .storageType(dtype)
        default: return nil
        }
    }
}
