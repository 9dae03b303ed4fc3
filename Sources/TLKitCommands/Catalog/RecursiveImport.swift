import Adapters
import Catalog
import Foundation
import SafeTensors

/// `add --recursive`: imports folder trees of adapter files, one add (one transaction) per file.
///
/// A file is skipped unread when the catalog's import cache (keyed by this host's name and the file's
/// absolute path) holds its size, modification time and inode as they are now; a re-run over a tree
/// that did not change therefore only walks it and stats its files. Every file read is recorded in the
/// cache after its add, also when its bytes were stored already. Files are read (opened, identified,
/// hashed) one ahead of their add (`ImportReadAhead`).
struct RecursiveImport {
    let folders: [String]
    let tags: [String]
    let note: String?
    let level: Int?
    let store: any CatalogStore

    /// What happened to the files, for the summary line.
    struct Counts {
        var added = 0, identical = 0, unchanged = 0
        var refused: [(path: String, why: String)] = []
        var done: Int { added + identical + unchanged + refused.count }
    }

    /// Imports every folder; returns how many files were refused (listed on standard error).
    func run() throws -> Int {
        let host = RecursiveImport.hostName()
        var counts = Counts()
        let progress = ImportProgress()
        for folder in folders {
            guard let root = realpath(folder, nil).map({ pointer -> String in defer { free(pointer) }; return String(cString: pointer) }) else {
                throw CommandFailure("\(folder): \(String(cString: strerror(errno)))")
            }
            guard RecursiveImport.fileType(root) == S_IFDIR else {
                throw CommandFailure("\(folder): not a folder (--recursive imports folders; add files without it)", exitCode: 2)
            }
            let files = RecursiveImport.adapterFiles(under: root)
            let cache = try store.importCache(host: host, under: root)
            let before = counts
            progress.start(total: files.count)
            let readAhead = ImportReadAhead(paths: files.map { root + "/" + $0 }, cache: cache)
            defer { readAhead.stop() }
            for (k, relative) in files.enumerated() {
                let path = root + "/" + relative
                try importFile(path, relative: relative, prepared: readAhead.take(k), cached: cache[path], host: host, counts: &counts)
                progress.update(counts, total: files.count, since: before)
            }
            progress.finish()
        }
        // Most reasons name the file already.
        for (path, why) in counts.refused { Console.error("refused: " + (why.hasPrefix(path + ": ") ? why : "\(path): \(why)")) }
        Console.error("imported \(counts.done) files: \(counts.added) added, \(counts.identical) identical to stored entries, \(counts.unchanged) unchanged, \(counts.refused.count) refused")
        return counts.refused.count
    }

    private func importFile(_ path: String, relative: String, prepared: ImportReadAhead.Prepared, cached: ImportRecord?,
                            host: String, counts: inout Counts) throws {
        let stamp: FileStamp, file: SafeTensorsFile, facts: EntryFacts, digests: AddDigests
        switch prepared {
        case .unchanged:
            counts.unchanged += 1
            return
        case let .refused(why):
            counts.refused.append((path, why))
            return
        case let .ready(readStamp, readFile, readFacts, readDigests):
            (stamp, file, facts, digests) = (readStamp, readFile, readFacts, readDigests)
        }
        let folderTags = relative.split(separator: "/").dropLast().map(String.init)
        let name = try cached?.reference.name ?? entryName(relative)
        let outcome: AddOutcome
        do {
            outcome = try AddCommand.store(file, path: path, name: name, tags: folderTags + tags.filter { !folderTags.contains($0) },
                                           note: note, facts: facts, level: level, digests: digests, into: store)
        } catch let error as CatalogError {
            // The catalog failed, not the file: stop.
            throw error
        } catch {
            counts.refused.append((path, "\(MappedInputs.explain(error))"))
            return
        }
        defer { Interruption.release() }
        switch outcome {
        case let .added(reference, _):
            Console.out(reference.description)
            counts.added += 1
            try store.recordImport(host: host, path: path, stamp: stamp, reference: reference)
        case let .alreadyStored(reference):
            counts.identical += 1
            try store.recordImport(host: host, path: path, stamp: stamp, reference: reference)
        }
    }

    /// The name of a file imported for the first time: its file name, or, when an entry has that name
    /// already (the same name in another folder, or an earlier `add`), its path below the folder.
    private func entryName(_ relative: String) throws -> String {
        let stem = AddCommand.stem(of: relative)
        guard try store.latestVersion(of: stem) != nil else { return stem }
        var parts = relative.split(separator: "/").map(String.init)
        parts[parts.count - 1] = stem
        return Reference.sanitizedName(parts.joined(separator: "/"))
    }

    /// Why a readable file is not imported: it is not an adapter.
    static func notAnAdapter(_ facts: EntryFacts) -> String? {
        switch facts.kind {
        case "lora", "tlora": return nil
        case "checkpoint": return "a model checkpoint, not an adapter"
        default: return "not an adapter: no tensor names of a known adapter format"
        }
    }

    /// The `.safetensors` files under `root`, as paths relative to it, sorted; hidden files and folders
    /// and linked folders are left out (a link to a file is followed).
    static func adapterFiles(under root: String) -> [String] {
        var out: [String] = []
        func walk(_ relative: String) {
            let folder = relative.isEmpty ? root : root + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
            for name in names.sorted() where !name.hasPrefix(".") {
                let child = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + child, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: walk(child)
                case S_IFREG, S_IFLNK:
                    if name.lowercased().hasSuffix(".safetensors") && fileType(root + "/" + child) == S_IFREG { out.append(child) }
                default: continue
                }
            }
        }
        walk("")
        return out
    }

    /// The type bits of what `path` names, links followed (0 when it cannot be stat'ed).
    static func fileType(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & S_IFMT : 0
    }

    /// This host's name, as gethostname(2) gives it (no name service is asked).
    static func hostName() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// The progress line of an import: on standard error when it is a terminal, redrawn at most ten times
/// a second; nothing otherwise.
private final class ImportProgress {
    private let terminal = isatty(2) != 0
    private var last = 0.0
    private var shown = false

    func start(total: Int) { last = 0 }

    func update(_ counts: RecursiveImport.Counts, total: Int, since before: RecursiveImport.Counts) {
        guard terminal else { return }
        let now = Date().timeIntervalSinceReferenceDate
        let done = counts.done - before.done
        guard now - last >= 0.1 || done == total else { return }
        last = now
        shown = true
        Console.writeAll(2, "\r\u{1B}[2K" + "importing \(done)/\(total): \(counts.added - before.added) added, \(counts.unchanged - before.unchanged) unchanged, \(counts.refused.count - before.refused.count) refused")
    }

    func finish() {
        if shown { Console.writeAll(2, "\n") }
        shown = false
    }
}
