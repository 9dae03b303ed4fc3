import Catalog
import Foundation
import SafeTensors

/// The files of a folder import, each read one file ahead of its add on a thread of its own: stat'ed,
/// compared with the import cache, opened (its header parsed), identified and hashed (`AddDigests`)
/// while the previous file is compressed and written. The add's serial stretches (the commit and its
/// WAL checkpoint; parsing and identification, which came before every add) then overlap with work
/// for the next file instead of leaving a core idle. At most one file waits ready beside the one
/// being added, so at most two are mapped at a time.
final class ImportReadAhead: @unchecked Sendable {
    /// What reading a file ahead found.
    enum Prepared {
        /// The import cache holds the file's size, modification time and inode as they are: not read.
        case unchanged
        /// Not imported, and why (unreadable, not a safetensors file, not an adapter).
        case refused(String)
        case ready(stamp: FileStamp, file: SafeTensorsFile, facts: EntryFacts, digests: AddDigests)
    }

    private let paths: [String]
    private let cache: [String: ImportRecord]
    private var results: [Prepared?]
    /// How many results the importer has taken: the reader works on file `taken` at most.
    private var taken = 0
    private var stopped = false
    private let condition = NSCondition()
    private let finished = DispatchGroup()

    init(paths: [String], cache: [String: ImportRecord]) {
        self.paths = paths
        self.cache = cache
        results = Array(repeating: nil, count: paths.count)
        finished.enter()
        Thread { [self] in
            read()
            finished.leave()
        }.start()
    }

    /// File `k`'s result (files are taken in order), waiting for it when it is not ready yet.
    func take(_ k: Int) -> Prepared {
        condition.lock()
        defer { condition.unlock() }
        precondition(k == taken, "files are taken in order")
        while results[k] == nil { condition.wait() }
        let result = results[k]!
        results[k] = nil
        taken += 1
        condition.broadcast()
        return result
    }

    /// Stops reading ahead and waits for the reader (a file being read is finished first); results
    /// not taken are dropped.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
        condition.lock()
        results = []
        condition.unlock()
    }

    private func read() {
        for k in paths.indices {
            condition.lock()
            while k > taken && !stopped { condition.wait() }
            let stop = stopped
            condition.unlock()
            if stop { return }
            let result = ImportReadAhead.prepare(paths[k], cached: cache[paths[k]])
            condition.lock()
            if !stopped { results[k] = result }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Everything an add of `path` needs before its transaction.
    static func prepare(_ path: String, cached: ImportRecord?) -> Prepared {
        guard let stamp = FileStamp.of(path) else { return .refused(String(cString: strerror(errno))) }
        if cached?.stamp == stamp { return .unchanged }
        let file: SafeTensorsFile
        let facts: EntryFacts
        do {
            file = try SafeTensorsFile.open(path)
            facts = catalogFacts(for: file, path: path)
        } catch {
            return .refused("\(MappedInputs.explain(error))")
        }
        if let why = RecursiveImport.notAnAdapter(facts) { return .refused(why) }
        return .ready(stamp: stamp, file: file, facts: facts, digests: AddDigests(of: file))
    }
}
