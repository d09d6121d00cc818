/// What `nft list table ip weft` printed, split into chains, sets and counters, and how it
/// differs from what weftd wants. Comparison is line by line after trimming: nft prints a table in
/// one canonical form, so an untouched table lists exactly as it was last listed. A set's elements
/// compare as a set (nft wraps them two to a line in its own order); a counter's values not at all.
public struct NFTListing: Equatable, Sendable {
    public var chains: [NFTChain]
    public var sets: [NFTSet]
    /// The named counters' names.
    public var counters: [String]
    /// Lines outside any chain, set or counter other than the table's own braces (a map, a
    /// flowtable someone added): weftd's table holds none, so each one is a difference.
    public var otherLines: [String]

    public init(chains: [NFTChain], sets: [NFTSet] = [], counters: [String] = [], otherLines: [String] = []) {
        self.chains = chains
        self.sets = sets
        self.counters = counters
        self.otherLines = otherLines
    }

    /// Parses nft's listing of one table. Blank lines and indentation do not matter; a block that
    /// is not a chain, a set or a counter (`map m {`) goes to `otherLines` whole.
    public init(parsing text: String) {
        enum Block {
            case chain(NFTChain)
            case set(name: String, body: [String])
            case counter
        }
        var chains: [NFTChain] = []
        var sets: [NFTSet] = []
        var counters: [String] = []
        var other: [String] = []
        var current: Block?
        var otherDepth = 0
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingBlanks()
            if line.isEmpty { continue }
            if otherDepth > 0 {
                other.append(line)
                if line.hasSuffix("{") { otherDepth += 1 }
                if line == "}" { otherDepth -= 1 }
                continue
            }
            if let block = current {
                switch block {
                case .chain(var chain):
                    if line == "}" {
                        chains.append(chain)
                        current = nil
                    } else {
                        chain.lines.append(line)
                        current = .chain(chain)
                    }
                case .set(let name, let body):
                    // An elements list ends on its last element's line, so a lone brace ends the set.
                    if line == "}" {
                        sets.append(Self.set(name, body))
                        current = nil
                    } else {
                        current = .set(name: name, body: body + [line])
                    }
                case .counter:
                    if line == "}" { current = nil }  // its packets and bytes are not compared
                }
                continue
            }
            if (line.hasPrefix("table ") && line.hasSuffix("{")) || line == "}" { continue }
            if line.hasSuffix("{"), let name = Self.blockName(line, kind: "chain") {
                current = .chain(NFTChain(name: name, lines: []))
                continue
            }
            if line.hasSuffix("{"), let name = Self.blockName(line, kind: "set") {
                current = .set(name: name, body: [])
                continue
            }
            if line.hasSuffix("{"), let name = Self.blockName(line, kind: "counter") {
                counters.append(name)
                current = .counter
                continue
            }
            other.append(line)
            if line.hasSuffix("{") { otherDepth = 1 }
        }
        // A truncated listing still shows what it had.
        switch current {
        case .chain(let chain): chains.append(chain)
        case .set(let name, let body): sets.append(Self.set(name, body))
        case .counter, nil: break
        }
        self.chains = chains
        self.sets = sets
        self.counters = counters
        otherLines = other
    }

    /// "chain forward {" → "forward" for kind "chain".
    private static func blockName(_ line: String, kind: String) -> String? {
        guard line.hasPrefix(kind + " ") else { return nil }
        return line.dropFirst(kind.count + 1).dropLast().trimmingBlanks()
    }

    /// A set block's lines: `elements = { a, b,` … `c }` (wrapped over lines) become the elements,
    /// every other line (`type ipv4_addr`, `flags …`) stays a line.
    private static func set(_ name: String, _ body: [String]) -> NFTSet {
        var lines: [String] = []
        var elements = ""
        var inElements = false
        for line in body {
            if inElements {
                elements += " " + line
            } else if line.hasPrefix("elements = {") {
                inElements = true
                elements = String(line.dropFirst("elements = {".count))
            } else {
                lines.append(line)
                continue
            }
            if let end = elements.firstIndex(of: "}") {
                elements = String(elements[..<end])
                inElements = false
            }
        }
        let items = elements.split(separator: ",").map { $0.trimmingBlanks() }.filter { !$0.isEmpty }
        return NFTSet(name: name, lines: lines, elements: items)
    }

    /// What keeps this listing from being exactly the wanted chains, sets and counters, one short
    /// phrase each: a missing chain, rule, set, element or counter, an unexpected one (a second
    /// copy of a rule counts), or rules out of order. Empty when the table is exactly what weftd wants.
    public func differences(
        from wanted: [NFTChain],
        sets wantedSets: [NFTSet] = [],
        counters wantedCounters: [String] = []
    ) -> [String] {
        var differences: [String] = []
        for chain in wanted {
            guard let listed = chains.first(where: { $0.name == chain.name }) else {
                differences.append("missing chain \(chain.name)")
                continue
            }
            if listed.lines == chain.lines { continue }
            let missing = Self.subtracting(listed.lines, from: chain.lines)
            let extra = Self.subtracting(chain.lines, from: listed.lines)
            differences += missing.map { "missing in \(chain.name): \($0)" }
            differences += extra.map { "unexpected in \(chain.name): \($0)" }
            if missing.isEmpty && extra.isEmpty { differences.append("\(chain.name): rules out of order") }
        }
        let wantedNames = Set(wanted.map(\.name))
        var seen = Set<String>()
        for chain in chains where !wantedNames.contains(chain.name) || !seen.insert(chain.name).inserted {
            differences.append("unexpected chain \(chain.name)")
        }
        for set in wantedSets {
            guard let listed = sets.first(where: { $0.name == set.name }) else {
                differences.append("missing set \(set.name)")
                continue
            }
            if listed.lines != set.lines {
                differences.append(
                    "set \(set.name) is \(listed.lines.joined(separator: "; ")), not \(set.lines.joined(separator: "; "))"
                )
            }
            let listedElements = Set(listed.elements)
            let wantedElements = Set(set.elements)
            let missing = set.elements.filter { !listedElements.contains($0) }
            let extra = listed.elements.filter { !wantedElements.contains($0) }
            if !missing.isEmpty { differences.append("missing in set \(set.name): \(missing.joined(separator: ", "))") }
            if !extra.isEmpty { differences.append("unexpected in set \(set.name): \(extra.joined(separator: ", "))") }
        }
        let wantedSetNames = Set(wantedSets.map(\.name))
        seen = []
        for set in sets where !wantedSetNames.contains(set.name) || !seen.insert(set.name).inserted {
            differences.append("unexpected set \(set.name)")
        }
        for counter in wantedCounters where !counters.contains(counter) {
            differences.append("missing counter \(counter)")
        }
        seen = []
        for counter in counters where !wantedCounters.contains(counter) || !seen.insert(counter).inserted {
            differences.append("unexpected counter \(counter)")
        }
        differences += otherLines.map { "unexpected: \($0)" }
        return differences
    }

    /// `lines` minus each of `removed` once (a multiset difference), in `lines`' order.
    static func subtracting(_ removed: [String], from lines: [String]) -> [String] {
        var counts: [String: Int] = [:]
        for line in removed { counts[line, default: 0] += 1 }
        var left: [String] = []
        for line in lines {
            if let count = counts[line], count > 0 {
                counts[line] = count - 1
            } else {
                left.append(line)
            }
        }
        return left
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (nft indents with tabs).
    func trimmingBlanks() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}
