/// How both stores read entries for `list` and `show`: one query, one row per entry and tag (a LEFT JOIN,
/// tags in order), each row read as an `EntryRecord`. The columns are named once, here, beside the
/// record that reads them, so the stores never count column positions themselves.
enum EntryRows {
    /// The `entries` columns of a record, in the order `EntryRecord.read` takes them.
    private static let columns = ["name", "version", "kind", "format", "base", "method", "rank", "min_rank", "trigger", "token",
                                  "class", "steps", "note", "size", "stored", "added_bytes", "sha256", "data_hash", "tensor_count",
                                  "source", "added_at", "id", "family", "derivative", "trigger_words", "training_tags",
                                  "sshs_model_hash"]

    /// The columns an add or a copy writes, and their values for an entry, in one order.
    static let insertColumns = ["name", "version", "sha256", "data_hash", "size", "stored", "added_bytes", "tensor_count",
                                "kind", "format", "base", "method", "rank", "min_rank", "trigger", "token", "class", "steps",
                                "note", "source", "added_at", "family", "derivative", "trigger_words", "training_tags",
                                "sshs_model_hash"]

    /// A value of `insertColumns`, for each backend to bind its own way.
    enum Value {
        case text(String?)
        case int(Int?)
    }

    static func insertValues(name: String, version: Int, sha256: String, dataHash: String, size: Int, stored: Int, added: Int,
                             tensorCount: Int, facts f: EntryFacts, note: String?, source: String?, addedAt: String) -> [Value] {
        [.text(name), .int(version), .text(sha256), .text(dataHash), .int(size), .int(stored), .int(added), .int(tensorCount),
         .text(f.kind), .text(f.format), .text(f.base), .text(f.method), .int(f.rank), .int(f.minRank), .text(f.trigger),
         .text(f.token), .text(f.className), .int(f.steps), .text(note), .text(source), .text(addedAt), .text(f.family),
         .text(f.derivative), .text(f.triggerWords.map(joinLines)), .text(f.trainingTags.map(joinLines)), .text(f.sshsModelHash)]
    }

    /// The INSERT statement of an entry, with `placeholder(n)` (1-based) for each value.
    static func insertStatement(placeholder: (Int) -> String) -> String {
        "INSERT INTO entries (" + insertColumns.joined(separator: ", ") + ") VALUES ("
            + (1...insertColumns.count).map(placeholder).joined(separator: ", ") + ")"
    }

    /// A list column: one item per line (items never hold line breaks: they are flattened to spaces).
    static func joinLines(_ items: [String]) -> String {
        items.map { $0.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n")
    }

    static func splitLines(_ text: String?) -> [String]? {
        text.map { $0.isEmpty ? [] : $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }

    /// The query; `whereClause` may use `e.` columns.
    static func query(_ whereClause: String) -> String {
        "SELECT " + columns.map { "e." + $0 }.joined(separator: ", ") + ", t.tag\n"
            + "FROM entries e LEFT JOIN tags t ON t.entry_id = e.id\n"
            + "\(whereClause) ORDER BY e.name, e.version, t.tag"
    }

    /// The summaries of the rows `next` steps through (nil at the end): consecutive rows of one entry
    /// add its tags.
    static func summaries<Row: EntryColumns>(_ next: () throws -> Row?) throws -> [EntrySummary] {
        var out: [EntrySummary] = []
        var current: (id: Int64, summary: EntrySummary)?
        while let row = try next() {
            let record = try EntryRecord.read(row)
            if current?.id == record.id, let tag = record.tag {
                current!.summary.tags.append(tag)
                continue
            }
            if let done = current { out.append(done.summary) }
            current = (record.id, record.summary)
        }
        if let done = current { out.append(done.summary) }
        return out
    }
}

/// A row of `EntryRows.query`, column by column in the order of its SELECT (SQLite's raw statement, or
/// a PostgreSQL row).
protocol EntryColumns {
    func text(at column: Int) throws -> String?
    func int(at column: Int) throws -> Int?
}

/// One row of `EntryRows.query`: an entry with one of its tags.
struct EntryRecord {
    let id: Int64
    let summary: EntrySummary
    let tag: String?

    static func read(_ row: some EntryColumns) throws -> EntryRecord {
        func text(_ i: Int) throws -> String? { try row.text(at: i) }
        func int(_ i: Int) throws -> Int? { try row.int(at: i) }
        let summary = EntrySummary(
            name: try text(0) ?? "", version: try int(1) ?? 0,
            facts: EntryFacts(kind: try text(2), format: try text(3), base: try text(4), method: try text(5),
                              rank: try int(6), minRank: try int(7), trigger: try text(8), token: try text(9),
                              className: try text(10), steps: try int(11), family: try text(22), derivative: try text(23),
                              triggerWords: EntryRows.splitLines(try text(24)), trainingTags: EntryRows.splitLines(try text(25)),
                              sshsModelHash: try text(26)),
            note: try text(12), tags: try text(27).map { [$0] } ?? [],
            size: try int(13) ?? 0, stored: try int(14) ?? 0, added: try int(15) ?? 0, sha256: try text(16) ?? "",
            dataHash: try text(17) ?? "", tensorCount: try int(18) ?? 0, source: try text(19), addedAt: try text(20) ?? "")
        return EntryRecord(id: Int64(try int(21) ?? 0), summary: summary, tag: summary.tags.first)
    }
}
