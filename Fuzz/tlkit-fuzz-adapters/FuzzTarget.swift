import Adapters

/// libFuzzer entry point: every input goes through the adapter readers into the adapter model.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = AdapterProbe.probe(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
