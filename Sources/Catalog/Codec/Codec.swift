import Foundation
import SafeTensors

/// How one tensor's bytes are stored: as they are, zstd-compressed, byte-plane shuffled then zstd, or
/// XORed with a reference tensor's bytes first (`xorShuffleZstd`, see `DeltaReference`). The name is
/// what the `blobs.codec` column holds; decoding is the exact inverse of encoding.
public enum Codec: Equatable, Sendable {
    case raw
    case zstd
    case shuffleZstd(width: Int)
    /// The element-wise XOR with the reference blob's raw bytes (`blobs.reference`), then as `shuffleZstd`.
    case xorShuffleZstd(width: Int)

    /// The zstd level used when none is given. Chosen from measurements (`Benchmarks/catalog/run.sh`,
    /// "levels"): with one frame per byte plane, levels 1, 3, 6 and 9 store fp32 T-LoRA checkpoints and
    /// fp16 LoRAs within 0.6% of each other, level 1 smallest and fastest (levels 6 and 9 add at 60% and
    /// 50% of its speed). Float weights hold little for the match finder; the gain is the entropy coding
    /// of the sign/exponent planes, which every level does alike.
    public static let defaultLevel = 1

    /// zstd frames with at least this much input are compressed by several zstd threads; smaller
    /// tensors are instead compressed side by side, one per thread.
    static let multithreadThreshold = 8 << 20

    /// Whether encoding a tensor of `byteCount` bytes of `dtype` uses zstd's own threads.
    static func usesThreads(byteCount: Int, dtype: DType) -> Bool {
        if case let .shuffleZstd(width) = preferred(for: dtype) { return byteCount / width >= multithreadThreshold }
        return byteCount >= multithreadThreshold
    }

    public var name: String {
        switch self {
        case .raw: return "raw"
        case .zstd: return "zstd"
        case let .shuffleZstd(width): return "shuffle\(width)+zstd"
        case let .xorShuffleZstd(width): return "xor+shuffle\(width)+zstd"
        }
    }

    /// Whether decoding needs the raw bytes of a reference blob.
    public var needsReference: Bool {
        if case .xorShuffleZstd = self { return true }
        return false
    }

    public init(name: String) throws {
        switch name {
        case "raw": self = .raw
        case "zstd": self = .zstd
        case "shuffle2+zstd": self = .shuffleZstd(width: 2)
        case "shuffle4+zstd": self = .shuffleZstd(width: 4)
        case "shuffle8+zstd": self = .shuffleZstd(width: 8)
        case "xor+shuffle2+zstd": self = .xorShuffleZstd(width: 2)
        case "xor+shuffle4+zstd": self = .xorShuffleZstd(width: 4)
        case "xor+shuffle8+zstd": self = .xorShuffleZstd(width: 8)
        default: throw CatalogError.codec("unknown codec '\(name)' (written by a newer tlkit?)")
        }
    }

    /// The codec tried for a tensor of `dtype`: float data of 2+ byte elements is shuffled first.
    static func preferred(for dtype: DType) -> Codec {
        guard dtype.isFloatingPoint else { return .zstd }
        // Complex64 is a pair of float32: shuffle by its 4-byte parts.
        let width = dtype == .c64 ? 4 : dtype.bitSize / 8
        return width >= 2 && dtype.bitSize % 8 == 0 ? .shuffleZstd(width: width) : .zstd
    }

    /// Encodes `bytes`; falls back to `.raw` when compression does not make the tensor smaller.
    static func encode(_ bytes: UnsafeRawBufferPointer, dtype: DType, level: Int, workers: Int) throws -> (Codec, [UInt8]) {
        let output = ReusableBuffer()
        let (codec, size) = try encode(bytes, dtype: dtype, level: level, workers: workers, into: output, scratch: ReusableBuffer())
        return withExtendedLifetime(output) { (codec, Array(UnsafeRawBufferPointer(output.prefix(size)))) }
    }

    /// Encodes `bytes` into the start of `output` and returns the codec and the stored size; falls back
    /// to `.raw` (a copy) when compression does not make the tensor smaller. `scratch` holds the byte
    /// planes of a shuffled tensor. Both buffers are reused from tensor to tensor by the caller.
    static func encode(_ bytes: UnsafeRawBufferPointer, dtype: DType, level: Int, workers: Int,
                       into output: ReusableBuffer, scratch: ReusableBuffer) throws -> (Codec, Int) {
        var codec = preferred(for: dtype)
        if case let .shuffleZstd(width) = codec, bytes.count % width != 0 { codec = .zstd }
        return try encode(bytes, as: codec, reference: nil, level: level, workers: workers, into: output, scratch: scratch)
    }

    /// Encodes `bytes` against `reference` (raw bytes of the same length): their XOR, shuffled and
    /// compressed. Nil when the tensor's type has no shuffled codec; the caller compares sizes.
    static func encodeDelta(_ bytes: UnsafeRawBufferPointer, reference: UnsafeRawBufferPointer, dtype: DType, level: Int,
                            workers: Int, into output: ReusableBuffer, scratch: ReusableBuffer) throws -> (Codec, Int)? {
        guard case let .shuffleZstd(width) = preferred(for: dtype), bytes.count % width == 0, bytes.count >= 64,
              reference.count == bytes.count else { return nil }
        return try encode(bytes, as: .xorShuffleZstd(width: width), reference: reference, level: level, workers: workers,
                          into: output, scratch: scratch)
    }

    /// Which encodings of `bytes` to make in full: nil stands for the plain one, a number for the
    /// delta against that reference. All of them for a tensor of up to four samples; for a larger one,
    /// only the one that is smallest on its first `sampleBytes` (against the same part of each
    /// reference): the drift between related tensors is alike throughout, and this keeps the cost of
    /// a tensor with references near that of one encoding. `output` and `scratch` are worked in.
    static func encodingsWorthTrying(_ bytes: UnsafeRawBufferPointer, references: [UnsafeRawBufferPointer], dtype: DType,
                                     level: Int, output: ReusableBuffer, scratch: ReusableBuffer) throws -> [Int?] {
        let all: [Int?] = [nil] + references.indices.map { $0 }
        guard !references.isEmpty, bytes.count > 4 * sampleBytes else { return all }
        let sample = UnsafeRawBufferPointer(rebasing: bytes[0..<sampleBytes])
        var best: (choice: Int?, size: Int) = (nil, try encode(sample, dtype: dtype, level: level, workers: 0, into: output, scratch: scratch).1)
        for (r, reference) in references.enumerated() where reference.count == bytes.count {
            guard let (_, size) = try encodeDelta(sample, reference: UnsafeRawBufferPointer(rebasing: reference[0..<sampleBytes]), dtype: dtype,
                                                  level: level, workers: 0, into: output, scratch: scratch), size < best.size else { continue }
            best = (r, size)
        }
        return [best.choice]
    }

    /// The part of a tensor `encodingsWorthTrying` judges by (a multiple of every element width).
    static let sampleBytes = 64 << 10

    /// Encodes `bytes` with `codec` (falling back to `.raw` when that is no smaller). `reference` is
    /// XORed in first for `xorShuffleZstd`; a second scratch area holds the XOR.
    static func encode(_ bytes: UnsafeRawBufferPointer, as codec: Codec, reference: UnsafeRawBufferPointer?, level: Int,
                       workers: Int, into output: ReusableBuffer, scratch: ReusableBuffer) throws -> (Codec, Int) {
        precondition(codec.needsReference == (reference != nil) && (reference == nil || reference!.count == bytes.count))
        var size = 0
        if bytes.count >= 64 {
            // Room for the worst case of every frame (one per byte plane at most).
            let room = output.prefix(Zstd.bound(bytes.count) + 8 * Zstd.bound(0))
            var shuffleWidth: Int?
            if case let .shuffleZstd(width) = codec { shuffleWidth = width }
            if case let .xorShuffleZstd(width) = codec { shuffleWidth = width }
            if let width = shuffleWidth {
                let both = scratch.prefix((reference == nil ? 1 : 2) * bytes.count)
                let shuffled = UnsafeMutableRawBufferPointer(rebasing: both[0..<bytes.count])
                if let reference {
                    let xored = UnsafeMutableRawBufferPointer(rebasing: both[bytes.count...])
                    Codec.xor(bytes, reference, into: xored)
                    ByteShuffle.shuffle(UnsafeRawBufferPointer(xored), into: shuffled, width: width)
                } else {
                    ByteShuffle.shuffle(bytes, into: shuffled, width: width)
                }
                // Each byte plane is its own zstd frame: the near-random low planes and the well-predicted
                // high planes then never share a block's entropy tables. Concatenated frames decode in one call.
                let plane = bytes.count / width
                for k in 0..<width {
                    let input = UnsafeRawBufferPointer(rebasing: shuffled[(k * plane)..<((k + 1) * plane)])
                    size += try Zstd.compress(input, into: UnsafeMutableRawBufferPointer(rebasing: room[size...]), level: level,
                                              workers: plane >= multithreadThreshold ? workers : 0)
                }
            } else {
                size = try Zstd.compress(bytes, into: room, level: level, workers: workers)
            }
        }
        if bytes.count < 64 || size >= bytes.count {
            // A delta that does not compress is no use: the plain encoding (tried by the caller) wins.
            if reference != nil { return (codec, Int.max) }
            let copy = output.prefix(bytes.count)
            if let base = bytes.baseAddress, !bytes.isEmpty { copy.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
            return (.raw, bytes.count)
        }
        return (codec, size)
    }

    /// Decodes a blob as its `blobs` row describes it (codec name, raw size), taking the destination
    /// from `memory` only once the row is known to be consistent with the stored bytes: a damaged row
    /// must end in an error, never in a trap or an allocation of whatever size it claims.
    /// `reference` is the decoded reference blob for a codec that needs one (nil: none was found).
    static func decode(codecName: String, rawSize: Int, stored: UnsafeRawBufferPointer, reference: UnsafeRawBufferPointer? = nil,
                       scratch: ReusableBuffer? = nil, memory: (Int) -> UnsafeMutableRawBufferPointer) throws {
        let codec = try Codec(name: codecName)
        guard rawSize >= 0 else { throw CatalogError.codec("the row records a negative raw size (\(rawSize))") }
        if codec.needsReference {
            guard let reference else { throw CatalogError.corrupt("codec \(codecName) needs a reference blob and the row names none") }
            guard reference.count == rawSize else {
                throw CatalogError.corrupt("the reference blob holds \(reference.count) bytes, expected \(rawSize)")
            }
        }
        switch codec {
        case .raw:
            guard stored.count == rawSize else {
                throw CatalogError.codec("raw blob holds \(stored.count) bytes, expected \(rawSize)")
            }
        case .zstd, .shuffleZstd, .xorShuffleZstd:
            // Frames that do not record their size are bounded by zstd's largest possible ratio.
            let declared = try Zstd.declaredSize(stored)
            if let declared, declared != rawSize {
                throw CatalogError.codec("zstd: frames declare \(declared) bytes, expected \(rawSize)")
            }
            if declared == nil, rawSize / Codec.largestRatio > stored.count {
                throw CatalogError.codec("zstd: \(stored.count) stored bytes cannot hold \(rawSize)")
            }
        }
        let destination = memory(rawSize)
        try codec.decode(stored, into: destination, scratch: scratch)
        if codec.needsReference, let reference { Codec.xor(UnsafeRawBufferPointer(destination), reference, into: destination) }
    }

    /// `a` XOR `b` byte for byte into `out` (all of one length; `out` may be `a`), eight bytes a step.
    static func xor(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        precondition(a.count == b.count && a.count == out.count)
        guard let pa = a.baseAddress, let pb = b.baseAddress, let po = out.baseAddress else { return }
        let words = a.count / 8
        for i in 0..<words {
            let x = pa.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) ^ pb.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
            po.storeBytes(of: x, toByteOffset: 8 * i, as: UInt64.self)
        }
        for i in (8 * words)..<a.count {
            po.storeBytes(of: pa.load(fromByteOffset: i, as: UInt8.self) ^ pb.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
        }
    }

    /// No zstd frame expands by more than this (a 128 KiB block of one repeated byte takes 4 bytes).
    static let largestRatio = 1 << 16

    /// Decodes `stored` into `destination`, which must be exactly the raw size. `scratch` holds the
    /// byte planes of a shuffled tensor on their way (a buffer of its own when none is given). For
    /// `xorShuffleZstd` this leaves the XOR in `destination`: the caller XORs the reference back in.
    func decode(_ stored: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                scratch: ReusableBuffer? = nil) throws {
        switch self {
        case .raw:
            guard stored.count == destination.count else {
                throw CatalogError.codec("raw blob holds \(stored.count) bytes, expected \(destination.count)")
            }
            if let base = stored.baseAddress, stored.count > 0 { destination.baseAddress!.copyMemory(from: base, byteCount: stored.count) }
        case .zstd:
            try Zstd.decompress(stored, into: destination)
        case let .shuffleZstd(width), let .xorShuffleZstd(width):
            guard destination.count % width == 0 else {
                throw CatalogError.codec("raw size \(destination.count) is not a multiple of the shuffle width \(width)")
            }
            let buffer = scratch ?? ReusableBuffer()
            try withExtendedLifetime(buffer) {
                let planes = buffer.prefix(destination.count)
                try Zstd.decompress(stored, into: planes)
                ByteShuffle.unshuffle(UnsafeRawBufferPointer(planes), into: destination, width: width)
            }
        }
    }
}
