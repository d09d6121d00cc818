import Forwarding
import Packets

/// What a replay prints: one `name: count` line per tally, then each drop reason counted, indented,
/// by its `DropReason` description, so scripts and tests can read it back.
struct ReplaySummary {
    var lines: [(String, UInt64)] = []
    var drops = DropCounters()

    var text: String {
        var text = ""
        for (name, count) in lines { text += "\(name): \(count)\n" }
        text += "dropped: \(drops.total)\n"
        for (reason, count) in drops.nonZero { text += "  \(reason): \(count)\n" }
        return text
    }
}
