import Catalog

/// libFuzzer entry point: every input is decoded as a damaged blob row, as the header rebuild reads it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = CatalogProbe.probe(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
