/// A violation of the safetensors rules, or an I/O failure, naming the file and (where known) the tensor.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Reason: Error, Equatable, Sendable {
        case cannotOpen(String)
        case isDirectory
        case headerTooSmall(fileSize: Int)
        case headerTooLarge(UInt64)
        case headerPastEnd(headerLength: UInt64, fileSize: Int)
        case headerNotUTF8
        case headerNotJSON(String)
        case headerNotObject
        case metadataNotObject
        case metadataValueNotString(key: String)
        case tensorEntryInvalid(String)
        case unknownDType(String)
        case sizeOverflow
        case misalignedSubByte
        case offsetsInvalid(String)
        case sizeMismatch(expected: Int, actual: Int)
        case lengthMismatch(expected: Int, actual: Int)
        case tensorNotFound
        case notConvertible(DType)
        case writeFailed(String)
        case writerMisuse(String)
        /// Another known format (a pickle, an image, GGUF, zip), named; never parsed further.
        case foreignFormat(String)
        /// The file shrank (or a mapped page vanished) after it was opened.
        case changedWhileReading
    }

    public let file: String
    public let tensor: String?
    public let reason: Reason

    public init(file: String, tensor: String? = nil, reason: Reason) {
        self.file = file
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String {
        let subject = tensor.map { "\(file): tensor '\($0)'" } ?? file
        return "\(subject): \(reasonText)"
    }

    var reasonText: String {
        switch reason {
        case let .cannotOpen(why): return "cannot open: \(why)"
        case .isDirectory: return "is a directory, not a safetensors file"
        case let .headerTooSmall(size): return "not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerTooLarge(n): return "header length \(n) exceeds the 100,000,000-byte limit"
        case let .headerPastEnd(n, size): return "header length \(n) runs past the end of the \(size)-byte file (truncated or not safetensors)"
        case .headerNotUTF8: return "header is not valid UTF-8"
        case let .headerNotJSON(why): return "header is not valid JSON: \(why)"
        case .headerNotObject: return "header is not a JSON object"
        case .metadataNotObject: return "__metadata__ is not a JSON object"
        case let .metadataValueNotString(key): return "__metadata__ value for '\(key)' is not a string (safetensors metadata is string-to-string)"
        case let .tensorEntryInvalid(why): return "invalid tensor entry: \(why)"
        case let .unknownDType(name): return "unknown dtype '\(name)'"
        case .sizeOverflow: return "shape × dtype size overflows"
        case .misalignedSubByte: return "sub-byte dtype does not fill a whole number of bytes"
        case let .offsetsInvalid(why): return "invalid data_offsets: \(why)"
        case let .sizeMismatch(expected, actual): return "shape × dtype is \(expected) bytes but data_offsets span \(actual) bytes"
        case let .lengthMismatch(expected, actual): return "file is \(actual) bytes but the header describes \(expected) bytes (\(actual > expected ? "trailing bytes" : "truncated"))"
        case .tensorNotFound: return "no such tensor"
        case let .notConvertible(dtype): return "dtype \(dtype.rawValue) cannot be converted to Float32"
        case let .writeFailed(why): return "write failed: \(why)"
        case let .writerMisuse(why): return "writer: \(why)"
        case let .foreignFormat(what): return "not a safetensors file: \(what)"
        case .changedWhileReading: return "changed while being read (another program truncated or rewrote it)"
        }
    }
}
