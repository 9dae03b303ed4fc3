import SafeTensors

/// Which stored tensor a new tensor may be encoded against (`Codec.xorShuffleZstd`), and the rule that
/// keeps decoding simple.
///
/// A training run's checkpoint holds trainable tensors that stay close to their frozen starting copy
/// in the same file, and close to the same tensor in the previous checkpoint: the XOR of the two bit
/// patterns has mostly zero sign, exponent and high mantissa bits, which compress far better than the
/// tensor alone. The candidates for a tensor are its frozen twin in the same file (`twinName`) and
/// the tensor of the same name in the entry's previous version; the encoder keeps whichever encoding
/// is smallest, the plain one included.
///
/// The rule: a reference is itself stored without a reference (chains are one step deep), so decoding
/// a tensor needs at most one other blob, and no cycle can form. A tensor that is some other tensor's
/// twin in the file being added is therefore never delta-encoded itself.
enum DeltaReference {
    /// Trainable-tensor suffix → frozen-twin suffix, for the T-LoRA layouts tlkit reads and writes
    /// (its own `.tlora.*` and the official training layout).
    static let twinSuffixes: [(trainable: String, frozen: String)] = [
        (".tlora.q", ".tlora.q0"), (".tlora.p", ".tlora.p0"), (".tlora.lambda", ".tlora.lambda0"),
        (".q_layer.weight", ".base_q.weight"), (".p_layer.weight", ".base_p.weight"), (".lambda_layer", ".base_lambda"),
    ]

    /// The name of the frozen twin of the tensor `name`, nil for a tensor that has none.
    static func twinName(_ name: String) -> String? {
        for (trainable, frozen) in twinSuffixes where name.hasSuffix(trainable) {
            return String(name.dropLast(trainable.count)) + frozen
        }
        return nil
    }

    /// Whether a tensor of `dtype` can be delta-encoded at all (shuffled float data).
    static func applies(to dtype: DType) -> Bool {
        if case .shuffleZstd = Codec.preferred(for: dtype) { return true }
        return false
    }

    /// For each tensor of `tensors`, the index of its frozen twin in the same list when that twin has
    /// the same dtype and shape (nil otherwise).
    static func twins(_ tensors: [TensorInfo]) -> [Int?] {
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        return tensors.map { t in
            guard applies(to: t.dtype), let twin = twinName(t.name).flatMap({ index[$0] }),
                  tensors[twin].dtype == t.dtype, tensors[twin].shape == t.shape else { return nil }
            return twin
        }
    }
}

extension DeltaReference {
    /// A reference a new tensor may be encoded against: a tensor of the file being added (`tensor`, its
    /// index) or a stored blob of the entry's previous version (`tensor` nil).
    struct Candidate: Equatable {
        let sha256: String
        let tensor: Int?
    }

    /// The candidates of each of the `fresh` tensors (indices into `tensors`, whose content hashes are
    /// `hashes`) that has any, twin first. `storedPlain`: which twins' hashes are stored without a
    /// reference; `previous`: the previous version's tensors stored without a reference, by name.
    /// Tensors whose bytes are some tensor's twin get none: they are references themselves.
    static func candidates(tensors: [TensorInfo], hashes: [String], fresh: [Int], storedPlain: Set<String>,
                           previous: [String: (sha256: String, rawSize: Int)]) -> [Int: [Candidate]] {
        let twins = twins(tensors)
        let references = Set(twins.compactMap { $0 }.map { hashes[$0] })
        let freshHashes = Set(fresh.map { hashes[$0] })
        var result: [Int: [Candidate]] = [:]
        for i in fresh where !references.contains(hashes[i]) && applies(to: tensors[i].dtype) && tensors[i].byteCount >= 64 {
            var list: [Candidate] = []
            if let j = twins[i], freshHashes.contains(hashes[j]) || storedPlain.contains(hashes[j]) {
                list.append(Candidate(sha256: hashes[j], tensor: j))
            }
            if let before = previous[tensors[i].name], before.rawSize == tensors[i].byteCount, before.sha256 != hashes[i],
               !list.contains(where: { $0.sha256 == before.sha256 }) {
                list.append(Candidate(sha256: before.sha256, tensor: nil))
            }
            if !list.isEmpty { result[i] = list }
        }
        return result
    }

    /// The hashes of the twins of `tensors` that `fresh` does not store (they must be stored already;
    /// the caller asks which of them are stored without a reference).
    static func storedTwinHashes(tensors: [TensorInfo], hashes: [String], fresh: [Int]) -> Set<String> {
        Set(twins(tensors).compactMap { $0 }.map { hashes[$0] }).subtracting(fresh.map { hashes[$0] })
    }

    /// `fresh` in the order their blobs are inserted: those without candidates first (every reference
    /// is then stored before the blobs that name it), each group in `sorted` order when given.
    static func insertionOrder(_ fresh: [Int], candidates: [Int: [Candidate]], by sorted: ((Int, Int) -> Bool)? = nil) -> [Int] {
        var plain = fresh.filter { candidates[$0] == nil }, delta = fresh.filter { candidates[$0] != nil }
        if let sorted { plain.sort(by: sorted); delta.sort(by: sorted) }
        return plain + delta
    }

    /// The compression jobs of `order`'s tensors of `file`, each with the bytes of its candidates: a tensor
    /// of the same file, or a stored blob `decoded` beforehand (a candidate that did not decode is left out).
    static func jobs(_ order: [Int], tensors: [TensorInfo], file: SafeTensorsFile, candidates: [Int: [Candidate]],
                     decoded: DecodedBlobs) -> [CompressionPipeline.Job] {
        order.map { i in
            CompressionPipeline.Job(bytes: file.rawBytes(tensors[i]), dtype: tensors[i].dtype, references: (candidates[i] ?? []).compactMap { c in
                guard let bytes = c.tensor.map({ file.rawBytes(tensors[$0]) }) ?? decoded.bytes[c.sha256].map(UnsafeRawBufferPointer.init) else { return nil }
                return (c.sha256, bytes)
            })
        }
    }
}

/// Raw bytes of stored blobs decoded for use as references, kept alive while jobs point into them.
final class DecodedBlobs {
    private(set) var bytes: [String: UnsafeMutableRawBufferPointer] = [:]

    deinit { bytes.values.forEach { $0.deallocate() } }

    /// Decodes one stored blob (it must have no reference); a blob that does not decode is left out
    /// (it is then no candidate: nothing is encoded against bytes that cannot be read back).
    func add(sha256: String, codecName: String, rawSize: Int, stored: UnsafeRawBufferPointer) {
        guard bytes[sha256] == nil, rawSize >= 0 else { return }
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, rawSize), alignment: 16)
        do {
            try Codec.decode(codecName: codecName, rawSize: rawSize, stored: stored) { _ in
                UnsafeMutableRawBufferPointer(rebasing: memory[0..<rawSize])
            }
            bytes[sha256] = UnsafeMutableRawBufferPointer(rebasing: memory[0..<rawSize])
        } catch {
            memory.deallocate()
        }
    }
}
