import Adapters

/// libFuzzer entry point: every input goes through the safetensors validator and the format detectors.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = FormatProbe.probe(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
