import SafeTensors

/// Reads untrusted bytes through the whole identification path: the safetensors validator, then the
/// checkpoint and adapter detectors. The fuzzer and its regression tests call this; it must only ever
/// return a description or a typed error.
public enum FormatProbe {
    public enum Outcome: Equatable {
        case identified(kind: String, format: String?)
        case rejected(String)
    }

    public static func probe(_ bytes: [UInt8]) -> Outcome {
        do {
            let file = try SafeTensorsFile.parse(bytes: bytes, name: "<fuzz>")
            // Touch every tensor through the conversions the commands use.
            for info in file.tensors where info.dtype.isConvertibleToFloat && info.elementCount <= 1 << 16 {
                _ = try file.floats(info)
            }
            let identity = try FileIdentifier.identify(file: file, path: "-")
            return .identified(kind: identity.kind.rawValue, format: identity.format)
        } catch {
            return .rejected("\(error)")
        }
    }
}
