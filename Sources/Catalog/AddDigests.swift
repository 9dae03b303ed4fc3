import Dispatch
import SafeTensors

/// The SHA-256 digests an add takes from a file's bytes (each tensor's, the whole file's, the data
/// section's), computed before the add. A folder import hashes the next file on a thread of its own
/// while the current one is compressed and written, so the add's serial stretches (the commit and
/// its checkpoint, header parsing, identification) no longer leave a core idle.
public struct AddDigests: Sendable {
    /// The file they were taken from: an add of any other file ignores them.
    let source: SafeTensorsFile
    let tensors: [String]
    let whole: String
    let data: String

    /// Every byte is hashed once per digest (the three are separate SHA-256 chains), on every core.
    public init(of file: SafeTensorsFile) {
        source = file
        let (tensors, pair, tasks) = Catalog.digests(of: file, given: nil)
        DispatchQueue.concurrentPerform(iterations: tasks.count) { tasks[$0]() }
        self.tensors = tensors
        whole = pair.file
        data = pair.data
    }
}

extension Catalog {
    /// An add's digests of `file`: the tensor hashes, and the whole-file hashes with the tasks that
    /// fill them in (none when `digests` were taken from this very file beforehand).
    static func digests(of file: SafeTensorsFile, given digests: AddDigests?)
        -> (tensors: [String], file: HashPair, tasks: [@Sendable () -> Void]) {
        let pair = HashPair()
        guard let digests, digests.source === file else {
            return (tensorHashes(file), pair, fileHashTasks(file, into: pair))
        }
        pair.file = digests.whole
        pair.data = digests.data
        return (digests.tensors, pair, [])
    }
}
