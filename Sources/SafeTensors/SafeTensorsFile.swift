#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A validated safetensors file whose data is memory-mapped.
///
/// Opening reads only the header; tensor bytes are touched when asked for, so inspecting a 7 GB
/// checkpoint costs a few megabytes. Aligned views are zero-copy; conversions produce new arrays.
/// Inputs that cannot be mapped (standard input, pipes, FIFOs) are first spooled to a temporary file.
public final class SafeTensorsFile: @unchecked Sendable {
    /// The name used in messages: the path, or `-` for standard input, as on the command line.
    public let path: String
    public let header: Header
    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    private let ownsMalloc: Bool
    var ownsMallocBuffer: Bool { ownsMalloc }
    var mappedByteCount: Int { mappedLength }

    public var metadata: [String: String] { header.metadata }
    public var tensors: [TensorInfo] { header.tensors }

    private init(path: String, header: Header, base: UnsafeRawPointer?, mappedLength: Int, ownsMalloc: Bool) {
        self.path = path
        self.header = header
        self.base = base
        self.mappedLength = mappedLength
        self.ownsMalloc = ownsMalloc
    }

    deinit {
        guard let base else { return }
        if ownsMalloc { free(UnsafeMutableRawPointer(mutating: base)) } else {
            MappedInputs.unregister(self)
            munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
        }
    }

    /// Opens `path` (`-` reads standard input) and validates it fully.
    public static func open(_ path: String) throws -> SafeTensorsFile {
        var fd = path == "-" ? dup(0) : Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SafeTensorsError(file: path, reason: .cannotOpen(errnoText())) }
        do {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw SafeTensorsError(file: path, reason: .cannotOpen(errnoText())) }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw SafeTensorsError(file: path, reason: .isDirectory) }
            if (st.st_mode & S_IFMT) != S_IFREG {
                let spooled = try InputSpool.spool(fd, name: path)
                close(fd)
                fd = spooled
                guard fstat(fd, &st) == 0 else { throw SafeTensorsError(file: path, reason: .cannotOpen(errnoText())) }
            }
            return try map(fd: fd, size: Int(st.st_size), name: path)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Validates the header read from `fd` and maps the file; on success the file owns `fd`.
    private static func map(fd: Int32, size fileSize: Int, name: String) throws -> SafeTensorsFile {
        let head = try preadExactly(fd: fd, count: min(ForeignFormat.sniffLength, fileSize), offset: 0, file: name)
        let length = try Header.headerLength(head: head, fileSize: fileSize, file: name)
        let json = try preadExactly(fd: fd, count: length, offset: 8, file: name)
        let header = try Header.parse(json: json, fileSize: fileSize, file: name)
        guard let mapped = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw SafeTensorsError(file: name, reason: .cannotOpen("mmap: \(errnoText())"))
        }
        let file = SafeTensorsFile(path: name, header: header, base: UnsafeRawPointer(mapped), mappedLength: fileSize, ownsMalloc: false)
        MappedInputs.register(file, path: name, fd: fd, base: UnsafeRawPointer(mapped), length: fileSize)
        return file
    }

    /// Parses an in-memory safetensors image (used by the catalog, tests and fuzzing).
    public static func parse(bytes: [UInt8], name: String) throws -> SafeTensorsFile {
        let length = try Header.headerLength(head: Array(bytes.prefix(ForeignFormat.sniffLength)), fileSize: bytes.count, file: name)
        let header = try Header.parse(json: Array(bytes[8..<(8 + length)]), fileSize: bytes.count, file: name)
        let buffer = malloc(max(1, bytes.count))!
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return SafeTensorsFile(path: name, header: header, base: UnsafeRawPointer(buffer), mappedLength: bytes.count, ownsMalloc: true)
    }

    /// Throws `changedWhileReading` when the file shrank or lost pages since it was opened, so a
    /// consumer that stores what it read (the catalog) can refuse before committing.
    public func checkUnchanged() throws {
        if !ownsMalloc, !MappedInputs.isIntact(self) { throw SafeTensorsError(file: path, reason: .changedWhileReading) }
    }

    // MARK: Access

    public func info(_ name: String) throws -> TensorInfo {
        guard let info = header.tensor(named: name) else {
            throw SafeTensorsError(file: path, tensor: name, reason: .tensorNotFound)
        }
        return info
    }

    /// The tensor's bytes in place (valid while this object lives). No copy.
    public func rawBytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        guard let base, info.byteCount > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + header.dataStart + info.begin, count: info.byteCount)
    }

    /// The whole data section in place (for hashing tensor bytes, e.g. `sshs_model_hash`).
    public var dataSection: UnsafeRawBufferPointer {
        guard let base, header.dataLength > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + header.dataStart, count: header.dataLength)
    }

    /// The header bytes exactly as stored (length prefix and JSON).
    public var headerBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: header.dataStart)
    }

    /// A copy of the tensor's bytes, for any dtype.
    public func bytes(_ name: String) throws -> [UInt8] { Array(rawBytes(try info(name))) }

    /// Whether the tensor's data sits at an address aligned for its element type (zero-copy typed access).
    public func isAligned(_ info: TensorInfo) -> Bool {
        guard let base else { return true }
        return Int(bitPattern: base + header.dataStart + info.begin) % info.dtype.alignment == 0
    }

    /// The tensor converted to Float32 (F64, F32, F16, BF16).
    public func floats(_ name: String) throws -> [Float] { try floats(try info(name)) }

    public func floats(_ info: TensorInfo) throws -> [Float] {
        guard info.dtype.isConvertibleToFloat else {
            throw SafeTensorsError(file: path, tensor: info.name, reason: .notConvertible(info.dtype))
        }
        return FloatConversion.toFloat32(rawBytes(info), dtype: info.dtype, count: info.elementCount)
    }

    /// Calls `body` with Float32 values: in place for aligned F32 data, else through a converted copy.
    public func withFloats<R>(_ info: TensorInfo, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        if info.dtype == .f32, isAligned(info) {
            let raw = rawBytes(info)
            return try body(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Float.self), count: info.elementCount))
        }
        let copy = try floats(info)
        return try copy.withUnsafeBufferPointer(body)
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

func preadExactly(fd: Int32, count: Int, offset: Int, file: String) throws -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SafeTensorsError(file: file, reason: .cannotOpen(errnoText()))
        }
        if n == 0 { throw SafeTensorsError(file: file, reason: .lengthMismatch(expected: offset + count, actual: offset + done)) }
        done += n
    }
    return buffer
}

extension SafeTensorsFile {
    /// A one-element tensor as Double, for scalars stored in any numeric dtype (kohya writes `.alpha` as
    /// F16, F32 or, through diffusers, I64).
    public func scalar(_ info: TensorInfo) throws -> Double {
        guard info.elementCount == 1 else {
            throw SafeTensorsError(file: path, tensor: info.name, reason: .tensorEntryInvalid("expected one element, found \(info.elementCount)"))
        }
        let raw = rawBytes(info)
        switch info.dtype {
        case .f16, .bf16, .f32, .f64: return Double(try floats(info)[0])
        case .i64: return Double(raw.loadUnaligned(as: Int64.self))
        case .i32: return Double(raw.loadUnaligned(as: Int32.self))
        case .i16: return Double(raw.loadUnaligned(as: Int16.self))
        case .i8: return Double(raw.loadUnaligned(as: Int8.self))
        case .u8: return Double(raw.loadUnaligned(as: UInt8.self))
        case .u16: return Double(raw.loadUnaligned(as: UInt16.self))
        case .u32: return Double(raw.loadUnaligned(as: UInt32.self))
        case .u64: return Double(raw.loadUnaligned(as: UInt64.self))
        default: throw SafeTensorsError(file: path, tensor: info.name, reason: .notConvertible(info.dtype))
        }
    }
}

extension SafeTensorsFile {
    /// Tells the kernel reads will be scattered (a few scalars of a large file), so it does not read
    /// ahead around them: `inspect` of a 228 MB LoRA then touches kilobytes, not most of the file.
    public func adviseRandomAccess() {
        guard let base, !ownsMallocBuffer, mappedByteCount > 0 else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), mappedByteCount, MADV_RANDOM)
    }
}

extension SafeTensorsFile {
    /// Tells the kernel every byte will be read (undoing `adviseRandomAccess`) and maps the file's
    /// pages in at once where the kernel can: one system call instead of a page fault per 4 KiB.
    public func adviseWholeRead() {
        guard let base, !ownsMallocBuffer, mappedByteCount > 0 else { return }
        let start = UnsafeMutableRawPointer(mutating: base)
        _ = madvise(start, mappedByteCount, MADV_NORMAL)
        // MADV_POPULATE_READ (Linux 5.14); older kernels only read ahead.
        if madvise(start, mappedByteCount, 22) != 0 { _ = madvise(start, mappedByteCount, MADV_WILLNEED) }
    }
}

extension SafeTensorsFile {
    /// Drops the tensor's pages from this process's memory once it has been read (streaming commands
    /// call it so that peak memory stays near one tensor, not the whole mapped file). Later reads fault
    /// the pages back in from the file.
    public func release(_ info: TensorInfo) {
        guard let base, !ownsMallocBuffer, info.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) + header.dataStart + info.begin
        let first = (start + page - 1) / page * page, last = (start + info.byteCount) / page * page
        guard last > first else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, MADV_DONTNEED)
    }
}

extension SafeTensorsFile {
    /// Whether a float tensor holds NaN or ±infinity, checked on the stored bits without converting.
    public func containsNonFinite(_ info: TensorInfo) -> Bool {
        NonFiniteScan.any(rawBytes(info), dtype: info.dtype, count: info.elementCount)
    }
}

/// NaN/infinity detection on raw IEEE bits: a value is not finite when its exponent bits are all ones.
public enum NonFiniteScan {
    /// Whether `count` stored elements of a float `dtype` hold NaN or ±infinity (other dtypes: false).
    /// Encoded output is checked the same way, so a value past the dtype's range (stored as infinity,
    /// e.g. above 65504 in F16) counts too.
    public static func any(_ raw: UnsafeRawBufferPointer, dtype: DType, count n: Int) -> Bool {
        switch dtype {
        case .f16: return any(raw, count: n, exponent: UInt16(0x7C00))
        case .bf16: return any(raw, count: n, exponent: UInt16(0x7F80))
        case .f32: return any(raw, count: n, exponent: UInt32(0x7F80_0000))
        case .f64: return any(raw, count: n, exponent: UInt64(0x7FF0_0000_0000_0000))
        default: return false
        }
    }

    /// `exponent` is the format's exponent mask; adding its lowest bit to (bits & mask) carries into the
    /// sign bit exactly when all exponent bits are set, so a chunk reduces with and/add/or only, which the
    /// compiler vectorises (a branch per element would not be).
    static func any<Bits: FixedWidthInteger & UnsignedInteger>(_ raw: UnsafeRawBufferPointer, count: Int, exponent: Bits) -> Bool {
        let carry = exponent & (~exponent &+ 1)   // lowest set bit of the mask
        let sign = Bits(1) << (Bits.bitWidth - 1)
        guard let start = raw.baseAddress, count > 0 else { return false }
        guard Int(bitPattern: start) % MemoryLayout<Bits>.alignment == 0 else {
            return (0..<count).contains { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<Bits>.stride, as: Bits.self) & exponent == exponent }
        }
        let values = UnsafeBufferPointer(start: start.assumingMemoryBound(to: Bits.self), count: count)
        var chunk = 0
        while chunk < count {
            let end = min(chunk + 16_384, count)
            var seen: Bits = 0
            for i in chunk..<end { seen |= (values[i] & exponent) &+ carry }
            if seen & sign != 0 { return true }
            chunk = end
        }
        return false
    }
}
