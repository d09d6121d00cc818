import Foundation

/// The operator commands' two output forms: an aligned table for people (the default) and JSON
/// for scripts (`--json`), so every command reads the same way in a terminal and in a pipeline.
struct TextTable {
    enum Alignment { case left, right }

    private let headers: [String]
    private let alignments: [Alignment]
    private var rows: [[String]] = []

    /// `alignments` defaults to left for every column; counters read better right-aligned.
    init(_ headers: [String], alignments: [Alignment]? = nil) {
        self.headers = headers
        self.alignments = alignments ?? Array(repeating: .left, count: headers.count)
        precondition(self.alignments.count == headers.count, "one alignment per column")
    }

    var isEmpty: Bool { rows.isEmpty }

    mutating func append(_ row: [String]) {
        precondition(row.count == headers.count, "a row has one cell per column")
        rows.append(row)
    }

    /// Columns two spaces apart, each as wide as its widest cell.
    func render() -> String {
        let all = [headers] + rows
        let widths = headers.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column -> String in
                let padding = String(repeating: " ", count: widths[column] - row[column].count)
                return alignments[column] == .right ? padding + row[column] : row[column] + padding
            }
            .joined(separator: "  ")
            .trimmingSuffix(while: { $0 == " " })  // no trailing spaces, whatever the last cells hold
        }
        .joined(separator: "\n") + "\n"
    }
}

enum JSONOutput {
    /// Pretty-printed with sorted keys, so output is stable across runs and diffs cleanly.
    static func render<Value: Encodable>(_ value: Value) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }
}

extension String {
    fileprivate func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = Substring(self)
        while let last = text.last, predicate(last) { text.removeLast() }
        return String(text)
    }
}
