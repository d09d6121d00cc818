import Addressing
import Synchronization

/// Keeps `table ip weft` exactly as the current ruleset wants it: `install` applies a ruleset in
/// one transaction, `check` (every --iptables-resync seconds) lists the table and applies it
/// again when anything differs — a deleted rule or table, an added one, a changed policy.
///
/// The comparison is against the listing nft printed right after our own apply, when that
/// listing has the chains and rule counts we asked for: so an nft that prints a rule in another
/// canonical form than `TrafficRuleset.text` does not make every check re-apply.
///
/// A ruleset that differs from the installed one only in the port filter's peers changes the
/// set's elements in one transaction; the chains and the drop counter stay. Every other change
/// replaces the table, and the counter with it: what it held is carried in `portFilterCounts`,
/// so the total only grows while weftd runs.
///
/// A ruleset with an IPv6 side keeps `table ip6 weft` the same way, in the same transactions
/// and checks; a later ruleset without one removes that table. The port filter's IPv6 set changes
/// in the same transaction as the IPv4 one, and its counter is carried the same way.
///
/// One nft transaction at a time: every operation holds the keeper's turn (`Turns`) for its whole
/// length, awaits of nft included, since an actor alone would let a second call in at each await.
public actor TrafficRuleKeeper {
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
        /// The same for `table ip6 weft`.
        var expectedIPv6: [NFTChain] = []
        /// Whether the table in place has an IPv6 twin this keeper put there.
        var ipv6Installed = false
        /// Whether the last apply succeeded (and `expected` is meaningful).
        var installed = false
        /// Whether this keeper ever put the table in place: only then does `remove` touch it.
        var everInstalled = false
        /// The port filter's drops by family (`TrafficRuleset.family`, `.ipv6Family`).
        var tallies: [String: Tally] = [:]
    }

    private struct Tally {
        /// Counted by tables this keeper replaced since.
        var droppedBefore = PortFilterCounts()
        /// The current table's counter as last read.
        var lastCount = PortFilterCounts()
    }

    private static let families = [TrafficRuleset.family, TrafficRuleset.ipv6Family]

    public nonisolated let nft: NFTables
    private var state = State()
    private let turns = Turns()
    /// The port filter's drops as last read by family, for a scrape that must not wait for nft.
    private let lastCounts = Mutex<[String: PortFilterCounts]>([:])

    public init(nft: NFTables = NFTables()) {
        self.nft = nft
    }

    public var wanted: TrafficRuleset? {
        get async {
            await turns.take()
            defer { turns.give() }
            return state.wanted
        }
    }

    public var isInstalled: Bool {
        get async {
            await turns.take()
            defer { turns.give() }
            return state.installed
        }
    }

    /// Makes `ruleset` the one kept and applies it now (an empty ruleset leaves nftables alone).
    /// On failure it stays wanted, so the next `check` tries again.
    public func install(_ ruleset: TrafficRuleset) async throws(TrafficRulesError) {
        await turns.take()
        defer { turns.give() }
        defer { publishCounts() }
        if state.installed, let current = state.wanted, ruleset.differsOnlyInPeers(from: current),
            let script = ruleset.portFilter?.elementScript(
                from: current.portFilter?.peers ?? [],
                ipv6: current.portFilter?.ipv6Peers ?? []
            )
        {
            state.wanted = ruleset
            do throws(TrafficRulesError) {
                try await nft.apply(
                    script,
                    operation: "update set \(PortFilter.setName) in \(TrafficRuleset.tableSpecifier)"
                )
                return
            } catch {
                // The set is not as last applied (an element deleted by hand, the table
                // flushed): the whole table below puts it right, in one transaction too.
            }
        }
        state.wanted = ruleset
        state.installed = false
        guard !ruleset.isEmpty else { return }
        try await apply(ruleset)
    }

    /// Compares the table with the wanted ruleset and applies it again if they differ; then reads
    /// the port filter's counter for `lastPortFilterCounts`.
    public func check() async -> Outcome {
        await turns.take()
        defer { turns.give() }
        let outcome = await compareAndRestore()
        await refreshCounts()
        return outcome
    }

    private func compareAndRestore() async -> Outcome {
        guard let ruleset = state.wanted, !ruleset.isEmpty else { return .nothingWanted }
        do throws(TrafficRulesError) {
            guard state.installed else {
                try await apply(ruleset)
                return .installed
            }
            var differences: [String]
            if let listing = try await nft.listTable() {
                differences = NFTListing(parsing: listing).differences(
                    from: state.expected,
                    sets: ruleset.sets,
                    counters: ruleset.counters
                )
            } else {
                differences = ["missing \(TrafficRuleset.tableSpecifier)"]
            }
            if ruleset.ipv6Text != nil {
                if let listing = try await nft.listTable(family: TrafficRuleset.ipv6Family) {
                    differences += NFTListing(parsing: listing).differences(
                        from: state.expectedIPv6,
                        sets: ruleset.ipv6Sets,
                        counters: ruleset.ipv6Counters
                    ).map { "\(TrafficRuleset.ipv6Family): \($0)" }
                } else {
                    differences.append("missing \(TrafficRuleset.ipv6TableSpecifier)")
                }
            }
            guard !differences.isEmpty else { return .intact }
            try await apply(ruleset)
            return .restored(differences: differences)
        } catch {
            state.installed = false
            return .failed(error)
        }
    }

    /// Deletes the table if this keeper ever installed it; returns whether it did. Nothing is
    /// wanted afterwards, so later checks leave nftables alone.
    @discardableResult
    public func remove() async throws(TrafficRulesError) -> Bool {
        await turns.take()
        defer { turns.give() }
        defer { publishCounts() }
        let installedBefore = state.everInstalled
        state.wanted = nil
        state.installed = false
        guard installedBefore else { return false }
        var script = TrafficRuleset.removeScript
        if state.ipv6Installed { script += TrafficRuleset.removeScript(TrafficRuleset.ipv6Family) }
        try await nft.apply(script, operation: "delete \(TrafficRuleset.tableSpecifier)")
        state.everInstalled = false
        state.ipv6Installed = false
        return true
    }

    /// Deletes the port filter an earlier run left in `table ip weft` and `table ip6 weft` when the
    /// wanted ruleset is empty (any other replaces the whole tables), in one transaction; the
    /// tables' other chains stay. Rules outlive weftd as flanneld's do, but a filter nobody keeps
    /// would drop every peer that joins later. Returns whether it deleted one.
    @discardableResult
    public func removeLeftoverPortFilter() async throws(TrafficRulesError) -> Bool {
        await turns.take()
        defer { turns.give() }
        guard state.wanted?.isEmpty ?? true else { return false }
        var script = ""
        for family in Self.families {
            guard let text = try await nft.listTable(family: family) else { continue }
            let listing = NFTListing(parsing: text)
            let table = "\(family) \(TrafficRuleset.table)"
            if listing.chains.contains(where: { $0.name == PortFilter.chainName }) {
                script += "delete chain \(table) \(PortFilter.chainName)\n"
            }
            if listing.sets.contains(where: { $0.name == PortFilter.setName }) {
                script += "delete set \(table) \(PortFilter.setName)\n"
            }
            if listing.counters.contains(PortFilter.counterName) {
                script += "delete counter \(table) \(PortFilter.counterName)\n"
            }
        }
        guard !script.isEmpty else { return false }
        try await nft.apply(script, operation: "delete the port filter from \(TrafficRuleset.tableSpecifier)")
        return true
    }

    /// The peers in the port filter's set as nft lists it now: at startup, the ones an earlier run
    /// left. Nil when there is no such set.
    public func listedPeers() async throws(TrafficRulesError) -> Set<IPv4Address>? {
        try await listedPeers(IPv4Address.self)
    }

    /// The same for the IPv6 set in `table ip6 weft`.
    public func listedIPv6Peers() async throws(TrafficRulesError) -> Set<IPv6Address>? {
        try await listedPeers(IPv6Address.self)
    }

    private func listedPeers<Address: IPAddress>(
        _: Address.Type
    ) async throws(TrafficRulesError) -> Set<Address>? {
        let family = Address.bitWidth == 32 ? TrafficRuleset.family : TrafficRuleset.ipv6Family
        guard let text = try await nft.listTable(family: family),
            let set = NFTListing(parsing: text).sets.first(where: { $0.name == PortFilter.setName })
        else { return nil }
        return Set(set.elements.compactMap { Address($0) })
    }

    /// The port filter's drops in `family`'s table since this keeper first installed it: the
    /// counter of the table in place, read now, plus what the tables it replaced had counted. Nil
    /// when no port filter is wanted there.
    public func portFilterCounts(family: String = TrafficRuleset.family) async -> PortFilterCounts? {
        await turns.take()
        defer { turns.give() }
        return await refreshCounts()[family]
    }

    /// `portFilterCounts` as of the last check or read, without waiting for nft or for a
    /// transaction in progress: what a metrics scrape shows.
    public nonisolated var lastPortFilterCounts: PortFilterCounts? {
        lastCounts.withLock { $0[TrafficRuleset.family] }
    }

    /// The same for the IPv6 underlay (`table ip6 weft`).
    public nonisolated var lastIPv6PortFilterCounts: PortFilterCounts? {
        lastCounts.withLock { $0[TrafficRuleset.ipv6Family] }
    }

    /// The families whose table the wanted ruleset filters in.
    private var filteredFamilies: [String] {
        guard state.everInstalled, let filter = state.wanted?.portFilter else { return [] }
        return filter.ipv6Peers == nil ? [TrafficRuleset.family] : Self.families
    }

    /// Reads the counters, for `lastPortFilterCounts` too; the caller holds the turn.
    @discardableResult
    private func refreshCounts() async -> [String: PortFilterCounts] {
        for family in filteredFamilies {
            if let now = await readCounter(family) { state.tallies[family, default: Tally()].lastCount = now }
        }
        return publishCounts()
    }

    /// The counts as `state` has them, made `lastPortFilterCounts`.
    @discardableResult
    private func publishCounts() -> [String: PortFilterCounts] {
        var counts: [String: PortFilterCounts] = [:]
        for family in filteredFamilies {
            let tally = state.tallies[family] ?? Tally()
            counts[family] = tally.droppedBefore + tally.lastCount
        }
        lastCounts.withLock { $0 = counts }
        return counts
    }

    /// `nft -j list counter <family> weft port-filter-dropped`; nil when it is not there.
    private func readCounter(_ family: String) async -> PortFilterCounts? {
        let arguments = ["-j", "list", "counter", family, TrafficRuleset.table, PortFilter.counterName]
        guard let json = try? await nft.run(arguments, operation: "list counter \(PortFilter.counterName)") else {
            return nil
        }
        return PortFilterCounts(nftJSON: json)
    }

    /// Runs `check` every `period` until the calling task is cancelled, handing each outcome
    /// to `report`.
    public func run(every period: Duration, report: @Sendable (Outcome) -> Void) async {
        while true {
            do { try await Task.sleep(for: period) } catch { return }
            report(await check())
        }
    }

    /// The caller holds the turn.
    private func apply(_ ruleset: TrafficRuleset) async throws(TrafficRulesError) {
        // The counters go with the tables; a table deleted by hand took its along, so its last reading stands in.
        var carried: [String: PortFilterCounts] = [:]
        if state.everInstalled {
            for family in Self.families {
                carried[family] = await readCounter(family) ?? state.tallies[family]?.lastCount
            }
        }
        var script = ruleset.applyScript
        // An IPv6 table of an earlier ruleset goes in the same transaction.
        if state.ipv6Installed && ruleset.ipv6Text == nil {
            script += TrafficRuleset.removeScript(TrafficRuleset.ipv6Family)
        }
        try await nft.apply(script, operation: "apply \(TrafficRuleset.tableSpecifier)")
        for family in Self.families {
            let before = state.tallies[family]?.droppedBefore ?? PortFilterCounts()
            state.tallies[family] = Tally(droppedBefore: before + (carried[family] ?? PortFilterCounts()))
        }
        state.installed = true
        state.everInstalled = true
        state.ipv6Installed = ruleset.ipv6Text != nil
        state.expected = await calibrated(
            ruleset.chains,
            TrafficRuleset.family,
            sets: ruleset.sets,
            counters: ruleset.counters
        )
        state.expectedIPv6 = await calibrated(
            ruleset.ipv6Chains,
            TrafficRuleset.ipv6Family,
            sets: ruleset.ipv6Sets,
            counters: ruleset.ipv6Counters
        )
    }

    /// `chains`, or nft's own rendering of them when it lists what we asked for in other words.
    private func calibrated(
        _ chains: [NFTChain],
        _ family: String,
        sets: [NFTSet],
        counters: [String]
    ) async -> [NFTChain] {
        guard !chains.isEmpty, let listing = try? await nft.listTable(family: family) else { return chains }
        let listed = NFTListing(parsing: listing)
        if !listed.differences(from: chains, sets: sets, counters: counters).isEmpty, Self.sameShape(listed, chains) {
            return listed.chains
        }
        return chains
    }

    /// Same chain names in the same order, same number of lines in each, nothing else.
    static func sameShape(_ listing: NFTListing, _ chains: [NFTChain]) -> Bool {
        listing.otherLines.isEmpty && listing.chains.map(\.name) == chains.map(\.name)
            && zip(listing.chains, chains).allSatisfy { $0.lines.count == $1.lines.count }
    }
}
