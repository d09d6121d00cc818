import Synchronization

/// Keeps `table ip weft` exactly as the current ruleset wants it: `install` applies a ruleset in
/// one transaction, `check` (every --iptables-resync seconds) lists the table and applies it
/// again when anything differs — a deleted rule or table, an added one, a changed policy.
///
/// The comparison is against the listing nft printed right after our own apply, when that
/// listing has the chains and rule counts we asked for: so an nft that prints a rule in another
/// canonical form than `TrafficRuleset.text` does not make every check re-apply.
public final class TrafficRuleKeeper: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// No ruleset installed or asked for: nothing to check.
        case nothingWanted
        /// The table is as wanted.
        case intact
        /// The last apply had failed; this one succeeded.
        case installed
        /// The table differed (the phrases say how) and was applied again.
        case restored(differences: [String])
        /// nft failed; the ruleset stays wanted and the next check tries again.
        case failed(TrafficRulesError)
    }

    private struct State {
        var wanted: TrafficRuleset?
        /// The chains as nft lists them after our last successful apply.
        var expected: [NFTChain] = []
        /// Whether the last apply succeeded (and `expected` is meaningful).
        var installed = false
        /// Whether this keeper ever put the table in place: only then does `remove` touch it.
        var everInstalled = false
    }

    public let nft: NFTables
    private let state = Mutex(State())

    public init(nft: NFTables = NFTables()) {
        self.nft = nft
    }

    public var wanted: TrafficRuleset? { state.withLock { $0.wanted } }
    public var isInstalled: Bool { state.withLock { $0.installed } }

    /// Makes `ruleset` the one kept and applies it now (an empty ruleset leaves nftables alone).
    /// On failure it stays wanted, so the next `check` tries again.
    public func install(_ ruleset: TrafficRuleset) throws(TrafficRulesError) {
        try state.withLock { (state) throws(TrafficRulesError) in
            state.wanted = ruleset
            state.installed = false
            guard !ruleset.isEmpty else { return }
            try apply(ruleset, &state)
        }
    }

    /// Compares the table with the wanted ruleset and applies it again if they differ.
    public func check() -> Outcome {
        state.withLock { state -> Outcome in
            guard let ruleset = state.wanted, !ruleset.isEmpty else { return .nothingWanted }
            do throws(TrafficRulesError) {
                guard state.installed else {
                    try apply(ruleset, &state)
                    return .installed
                }
                let differences: [String]
                if let listing = try nft.listTable() {
                    differences = NFTListing(parsing: listing).differences(from: state.expected)
                } else {
                    differences = ["missing \(TrafficRuleset.tableSpecifier)"]
                }
                guard !differences.isEmpty else { return .intact }
                try apply(ruleset, &state)
                return .restored(differences: differences)
            } catch {
                state.installed = false
                return .failed(error)
            }
        }
    }

    /// Deletes the table if this keeper ever installed it; returns whether it did. Nothing is
    /// wanted afterwards, so later checks leave nftables alone.
    @discardableResult
    public func remove() throws(TrafficRulesError) -> Bool {
        try state.withLock { (state) throws(TrafficRulesError) -> Bool in
            let installedBefore = state.everInstalled
            state.wanted = nil
            state.installed = false
            guard installedBefore else { return false }
            try nft.apply(TrafficRuleset.removeScript, operation: "delete \(TrafficRuleset.tableSpecifier)")
            state.everInstalled = false
            return true
        }
    }

    /// Runs `check` every `period` until the calling task is cancelled, handing each outcome
    /// to `report`.
    public func run(every period: Duration, report: @Sendable (Outcome) -> Void) async {
        while true {
            do { try await Task.sleep(for: period) } catch { return }
            report(check())
        }
    }

    private func apply(_ ruleset: TrafficRuleset, _ state: inout State) throws(TrafficRulesError) {
        try nft.apply(ruleset.applyScript, operation: "apply \(TrafficRuleset.tableSpecifier)")
        state.installed = true
        state.everInstalled = true
        state.expected = ruleset.chains
        // Calibrate on nft's own rendering when it lists what we asked for in other words.
        if let listing = try? nft.listTable() {
            let listed = NFTListing(parsing: listing)
            if !listed.differences(from: ruleset.chains).isEmpty, Self.sameShape(listed, ruleset.chains) {
                state.expected = listed.chains
            }
        }
    }

    /// Same chain names in the same order, same number of lines in each, nothing else.
    static func sameShape(_ listing: NFTListing, _ chains: [NFTChain]) -> Bool {
        listing.otherLines.isEmpty && listing.chains.map(\.name) == chains.map(\.name)
            && zip(listing.chains, chains).allSatisfy { $0.lines.count == $1.lines.count }
    }
}
