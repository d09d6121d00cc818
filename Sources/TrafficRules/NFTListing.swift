/// What `nft list table ip weft` printed, split into chains, and how it differs from the
/// chains weftd wants. Comparison is line by line after trimming: nft prints a table in one
/// canonical form, so an untouched table lists exactly as it was last listed.
public struct NFTListing: Equatable, Sendable {
    public var chains: [NFTChain]
    /// Lines outside any chain other than the table's own braces (a set, a map, a flowtable
    /// someone added): weftd's table holds none, so each one is a difference.
    public var otherLines: [String]

    public init(chains: [NFTChain], otherLines: [String] = []) {
        self.chains = chains
        self.otherLines = otherLines
    }

    /// Parses nft's listing of one table. Blank lines and indentation do not matter; a block that
    /// is not a chain (`set s {`) goes to `otherLines` whole.
    public init(parsing text: String) {
        var chains: [NFTChain] = []
        var other: [String] = []
        var current: NFTChain?
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
            if var chain = current {
                if line == "}" {
                    chains.append(chain)
                    current = nil
                } else {
                    chain.lines.append(line)
                    current = chain
                }
                continue
            }
            if (line.hasPrefix("table ") && line.hasSuffix("{")) || line == "}" { continue }
            if line.hasPrefix("chain ") && line.hasSuffix("{") {
                let name = line.dropFirst("chain ".count).dropLast().trimmingBlanks()
                current = NFTChain(name: name, lines: [])
                continue
            }
            other.append(line)
            if line.hasSuffix("{") { otherDepth = 1 }
        }
        if let current { chains.append(current) }  // a truncated listing still shows what it had
        self.chains = chains
        otherLines = other
    }

    /// What keeps this listing from being exactly `wanted`, one short phrase each: a missing
    /// chain or rule, an unexpected one (a second copy counts), or rules out of order. Empty when
    /// the table is exactly what weftd wants.
    public func differences(from wanted: [NFTChain]) -> [String] {
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
