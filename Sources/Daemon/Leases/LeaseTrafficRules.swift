import Addressing
import Config
import ControlPlane
import Glibc
import HostGateway
import Logging
import Netlink
import Synchronization
import TrafficRules

/// weftd's masquerade, forward and port-filter rules (--ip-masq, --iptables-forward-rules,
/// --port-filter) for the lease it holds, and what they mean for readiness: as in flanneld,
/// /readyz turns 200 only once they are in place. A failure to apply them never stops the
/// dataplane; weftd stays not ready, says why once, and the resync keeps trying.
///
/// The port filter (--port-filter, udp and vxlan) follows the peers' PublicIPs from each route-table
/// publication (`DaemonContext.peerAddresses`), on a task of its own so no watcher waits for nft;
/// for a dual-stack lease on kernel vxlan, whose flannel-v6.<VNI> listens on the same port over the
/// IPv6 underlay, their PublicIPv6 too, in `table ip6 weft`.
/// Until the first publication the set holds the peers an earlier run left in it (a restart keeps
/// filtering); with none, the filter is not installed: a table without it accepts as flanneld
/// does, where one with an empty set would drop every peer. Readiness does not wait for it.
///
/// A dual-stack lease gets the same masquerade and forward rules for its IPv6Network in
/// `table ip6 weft`, and its IPv6 subnet a blackhole route of its own.
///
/// The same resync keeps the blackhole routes of --ip-blackhole-route (`BlackholeRoute`), as
/// flanneld's loop does, and subnet.env (`SubnetFile`). Readiness waits for neither; a failure is
/// logged once.
final class LeaseTrafficRules: Sendable {
    let keeper: TrafficRuleKeeper
    private let context: DaemonContext
    private struct State {
        /// The line the runner last asked to be ready with; nil until it asks and after it
        /// withdraws (lease lost, rebuild). While the rules fail it waits here.
        var readyLine: String?
        /// The current failure, and whether it was logged: a resync failing the same way every
        /// period, or the lease taken again meanwhile, logs it once.
        var failure: String?
        var announced = false
        /// The lease the rules and the blackhole routes are for (its config names the backend and
        /// port); nil before the first.
        var lease: AcquiredLease?
        /// The peers' addresses as last published; nil before the first publication. Kept across
        /// dataplanes: a rebuilt one's watcher lists the same leases again.
        var peers: PeerAddresses?
    }
    private let state = Mutex(State())
    /// `install(for:)` and `follow` one at a time, so a peer update cannot apply a ruleset computed
    /// for the lease before.
    private let turns = Turns()
    /// Failures to keep each family's blackhole route, each said once.
    private let blackholeProblems: ProblemLog
    private let ipv6BlackholeProblems: ProblemLog
    /// The peers' addresses from every publication; newest only, so a burst applies its last one.
    private let peerUpdates: AsyncStream<PeerAddresses>

    init(context: DaemonContext, keeper: TrafficRuleKeeper = TrafficRuleKeeper()) {
        self.context = context
        self.keeper = keeper
        blackholeProblems = ProblemLog(logger: context.logger)
        ipv6BlackholeProblems = ProblemLog(logger: context.logger)
        let (updates, continuation) = AsyncStream<PeerAddresses>.makeStream(bufferingPolicy: .bufferingNewest(1))
        peerUpdates = updates
        context.peerAddresses.follow { continuation.yield($0) }
        context.status.countPortFilterDrops { [keeper] in
            (keeper.lastPortFilterCounts, keeper.lastIPv6PortFilterCounts)
        }
    }

    private var options: DaemonOptions { context.options }
    private var logger: Logger { context.logger }

    /// The rules for a lease under weftd's flags; the port filter only once the peers are known.
    func ruleset(for lease: AcquiredLease, peers: PeerAddresses?) -> TrafficRuleset {
        let config = lease.config
        var ruleset = TrafficRuleset(
            network: config.network,
            subnet: lease.subnet,
            masquerade: options.ipMasq,
            forwardAccept: options.iptablesForwardRules,
            fullyRandom: !options.ipMasqFullyRandomDisable
        )
        if let port = filteredPort(config), let peers {
            ruleset.portFilter = PortFilter(
                port: port,
                peers: peers.ipv4,
                ipv6Peers: filtersIPv6Underlay(lease) ? peers.ipv6 : nil
            )
        }
        if let network = config.ipv6?.network, let subnet = lease.ipv6Subnet {
            ruleset.ipv6 = TrafficRuleset.IPv6Networks(network: network, subnet: subnet)
        }
        return ruleset
    }

    /// The UDP port the filter guards, nil when there is none: --port-filter=false, or host-gw
    /// (no tunnel, no port).
    func filteredPort(_ config: NetworkConfig) -> UInt16? {
        guard options.portFilter, config.backend.kind != .hostGateway, config.backend.effectivePort != 0 else {
            return nil
        }
        return config.backend.effectivePort
    }

    /// Whether the backend listens on the filtered port over the IPv6 underlay too: a dual-stack
    /// vxlan lease, on the kernel's flannel-v6.<VNI> or the engine's IPv6 socket. udp and host-gw
    /// have no IPv6 socket.
    func filtersIPv6Underlay(_ lease: AcquiredLease) -> Bool {
        lease.ipv6Subnet != nil && lease.config.backend.kind == .vxlan
    }

    /// Applies the rules for `lease` (a new subnet replaces the whole table in one transaction).
    /// A failure is kept for `markReady` to report; the resync tries again.
    func install(for lease: AcquiredLease) async {
        state.withLock { $0.lease = lease }
        // Also without the flag: a blackhole route of an earlier run with it (or for an earlier lease) goes.
        keepBlackholeRoutes()
        await turns.take()
        defer { turns.give() }
        var peers = state.withLock { $0.peers }
        var carried = false
        if peers == nil, filteredPort(lease.config) != nil, let leftIPv4 = try? await keeper.listedPeers() {
            // Without an IPv6 set left, the IPv6 underlay stays open until the leases are listed.
            let leftIPv6 = filtersIPv6Underlay(lease) ? (try? await keeper.listedIPv6Peers()) : nil
            let left = PeerAddresses(ipv4: leftIPv4, ipv6: leftIPv6)
            state.withLock { $0.peers = left }
            peers = left
            carried = true
        }
        let ruleset = self.ruleset(for: lease, peers: peers)
        var failure: TrafficRulesError?
        do throws(TrafficRulesError) {
            try await keeper.install(ruleset)
        } catch {
            failure = error
        }
        if let failure {
            failed(failure, fromResync: false)
            return
        }
        succeeded()
        if !ruleset.isEmpty {
            logger.info("traffic rules: \(Self.describe(ruleset))")
        }
        if let port = filteredPort(lease.config) {
            if let filter = ruleset.portFilter, carried {
                let ipv6 = filter.ipv6Peers.map { " (\($0.count) over the IPv6 underlay)" } ?? ""
                logger.info(
                    "port filter: UDP \(port) open to the \(filter.peers.count) peer(s)\(ipv6) an earlier run left in the sets until the peers' leases are listed"
                )
            } else if ruleset.portFilter == nil {
                logger.info("port filter: UDP \(port) open to all until the peers' leases are listed")
            }
        }
        if ruleset.isEmpty, filteredPort(lease.config) == nil { await removeLeftoverPortFilter() }
    }

    /// Follows the peers' PublicIPs into the port filter's set until cancelled.
    func followPeers() async {
        for await peers in peerUpdates { await follow(peers) }
    }

    /// Puts `peers` in the port filter's sets: the elements changed in one nft transaction, the
    /// whole tables only if the sets were not as last applied. A failure is handled as a resync's.
    func follow(_ peers: PeerAddresses) async {
        enum Outcome {
            case none
            case applied(port: UInt16, before: PeerAddresses?, ipv6: Bool)
            case failed(TrafficRulesError)
        }
        await turns.take()
        defer { turns.give() }
        let (before, lease) = state.withLock { state in
            defer { state.peers = peers }
            return (state.peers, state.lease)
        }
        let outcome: Outcome
        if let lease, let port = filteredPort(lease.config) {
            let rules = self.ruleset(for: lease, peers: peers)
            if rules == (await keeper.wanted) {
                outcome = .none
            } else {
                do throws(TrafficRulesError) {
                    try await keeper.install(rules)
                    outcome = .applied(port: port, before: before, ipv6: rules.portFilter?.ipv6Peers != nil)
                } catch {
                    outcome = .failed(error)
                }
            }
        } else {
            outcome = .none
        }
        switch outcome {
        case .none:
            break
        case .applied(let port, let before, let ipv6):
            if before?.ipv4 != peers.ipv4 {
                logger.info("port filter: \(Self.describePeers(port: port, before: before?.ipv4, after: peers.ipv4))")
            }
            if ipv6, let after = peers.ipv6, before?.ipv6 != after {
                logger.info("port filter: \(Self.describePeers(port: port, before: before?.ipv6, after: after))")
            }
            succeeded()
        case .failed(let error):
            failed(error, fromResync: true)
        }
    }

    /// "UDP 8472 open to 3 peer(s) only; added 198.18.0.3; removed 198.18.0.4", and for the IPv6
    /// underlay "UDP 8472 over IPv6 open to …".
    static func describePeers<Address: IPAddress>(port: UInt16, before: Set<Address>?, after: Set<Address>) -> String {
        let isIPv6 = Address.bitWidth == 128
        var text = "UDP \(port)\(isIPv6 ? " over IPv6" : "") open to \(after.count) peer(s) only"
        guard let before else {
            let table = isIPv6 ? TrafficRuleset.ipv6TableSpecifier : TrafficRuleset.tableSpecifier
            return text + " (\(table) set \(PortFilter.setName))"
        }
        let (added, removed) = PortFilter.changes(after, from: before)
        if !added.isEmpty { text += "; added " + added.map { "\($0)" }.joined(separator: ", ") }
        if !removed.isEmpty { text += "; removed " + removed.map { "\($0)" }.joined(separator: ", ") }
        return text
    }

    /// No filter wanted and no table: a filter an earlier run left is deleted, said in one line.
    private func removeLeftoverPortFilter() async {
        do throws(TrafficRulesError) {
            if try await keeper.removeLeftoverPortFilter() {
                logger.info(
                    "port filter: deleted the one an earlier run left in \(TrafficRuleset.tableSpecifier) or \(TrafficRuleset.ipv6TableSpecifier) (--port-filter is off or the backend has no port)"
                )
            }
        } catch {
            if case .toolMissing = error.reason { return }  // no nft, so no filter either
            logger.warning("port filter: an earlier run's may be left in \(TrafficRuleset.tableSpecifier): \(error)")
        }
    }

    /// Marks the daemon ready with `line` if the rules are in place; otherwise keeps it not ready
    /// with the rules' failure, and a resync that puts them in marks it ready with `line`.
    func markReady(_ line: String) {
        let (failure, isNew) = state.withLock { state -> (String?, Bool) in
            state.readyLine = line
            defer { if state.failure != nil { state.announced = true } }
            return (state.failure, !state.announced)
        }
        if let failure {
            if isNew { context.markNotReady(failure) } else { context.readiness.markNotReady(failure) }
        } else {
            context.markReady(line)
        }
    }

    /// Something else made the daemon not ready: a resync repairing the rules must not undo it.
    func withdrawReady() {
        state.withLock { $0.readyLine = nil }
    }

    /// Checks the rules every --iptables-resync seconds until cancelled.
    func resync() async {
        await keeper.run(every: options.iptablesResync) { self.report($0) }
    }

    func report(_ outcome: TrafficRuleKeeper.Outcome) {
        if options.ipBlackholeRoute { keepBlackholeRoutes() }
        context.subnetFile.keep()
        switch outcome {
        case .nothingWanted, .intact:
            break
        case .installed:
            logger.info("traffic rules: \(TrafficRuleset.tableSpecifier) is in place now")
            succeeded()
        case .restored(let differences):
            logger.warning(
                "traffic rules: \(TrafficRuleset.tableSpecifier) was not as weftd keeps it (\(differences.joined(separator: "; "))); applied it again"
            )
            succeeded()
        case .failed(let error):
            failed(error, fromResync: true)
        }
    }

    /// On a clean stop with --ip-masq-cleanup: deletes the table this run installed.
    func removeOnStop() async {
        guard options.ipMasqCleanup else { return }
        do throws(TrafficRulesError) {
            if try await keeper.remove() {
                logger.info("traffic rules: deleted \(TrafficRuleset.tableSpecifier) (--ip-masq-cleanup)")
            }
        } catch {
            logger.warning("\(error)")
        }
    }

    /// The rules are in: if a failure had held readiness back, give it back.
    private func succeeded() {
        let readyLine = state.withLock { state -> String? in
            defer {
                state.failure = nil
                state.announced = false
            }
            return state.failure == nil ? nil : state.readyLine
        }
        if let readyLine { context.markReady(readyLine) }
    }

    /// Keeps the failure for `markReady` (which says it after an install); from a resync, says
    /// it here (once per distinct failure) and takes readiness away if the runner had it ready.
    private func failed(_ error: TrafficRulesError, fromResync: Bool) {
        let line = "traffic rules not in place: \(error)"
        let (say, wasReady) = state.withLock { state -> (Bool, Bool) in
            if state.failure != line {
                state.failure = line
                state.announced = false
            }
            let say = fromResync && !state.announced
            if say { state.announced = true }
            return (say, state.readyLine != nil)
        }
        guard fromResync else { return }
        if wasReady {
            if say { context.markNotReady(line) } else { context.readiness.markNotReady(line) }
        } else if say {
            logger.warning("\(line)")
        }
    }

    /// Makes Weft's blackhole routes of both families exactly the held lease's subnets with
    /// --ip-blackhole-route, none without it.
    private func keepBlackholeRoutes() {
        let lease = options.ipBlackholeRoute ? state.withLock { $0.lease } : nil
        keepBlackholeRoute(lease?.subnet, problems: blackholeProblems)
        keepBlackholeRoute(lease?.ipv6Subnet, problems: ipv6BlackholeProblems)
    }

    /// Makes Weft's blackhole routes of `subnet`'s family exactly the one for `subnet` (none when
    /// nil) and says what changed.
    private func keepBlackholeRoute<Prefix: IPPrefix>(_ subnet: Prefix?, problems: ProblemLog) {
        do throws(NetlinkError) {
            let change = try BlackholeRoute.reconcile(wanted: subnet, Prefix.self)
            let wasFailing = problems.clear()
            for deleted in change.deleted {
                logger.info(
                    "blackhole route for \(deleted) removed (\(deleted == subnet ? "its metric was not weftd's" : subnet == nil ? "--ip-blackhole-route is off" : "not this host's lease"))"
                )
            }
            if let added = change.added {
                logger.info(
                    "blackhole route for \(added) added, metric \(BlackholeRoute.metric) (--ip-blackhole-route)"
                )
            } else if wasFailing, let subnet {
                logger.info("blackhole route for \(subnet) is in place now")
            }
        } catch  where subnet == nil && error.code == EAFNOSUPPORT {
            return  // a host without this family holds no blackhole of ours in it
        } catch {
            let line =
                "blackhole route for \(subnet.map { "\($0)" } ?? "an earlier lease") not kept: \(error); retrying every \(options.iptablesResync)"
            problems.report(kind: line, line)
        }
    }

    /// The rules in one line, each table named after what it holds.
    static func describe(_ ruleset: TrafficRuleset) -> String {
        var parts: [String] = []
        let fullyRandom = ruleset.fullyRandom ? ", fully-random" : ""
        if ruleset.masquerade, let network = ruleset.network, let subnet = ruleset.subnet {
            parts.append("masquerade traffic leaving \(network) (own subnet \(subnet)\(fullyRandom))")
        }
        if ruleset.forwardAccept, let network = ruleset.network { parts.append("forward accept for \(network)") }
        if let filter = ruleset.portFilter {
            parts.append("UDP \(filter.port) open to \(filter.peers.count) peer(s) only")
        }
        var text = parts.isEmpty ? "" : parts.joined(separator: ", ") + " in \(TrafficRuleset.tableSpecifier)"
        var ipv6Parts: [String] = []
        if let ipv6 = ruleset.ipv6, ruleset.masquerade || ruleset.forwardAccept {
            // An IPv6-only network's rules are all here: say them in full.
            let what =
                ruleset.network != nil
                ? "the same for"
                : [
                    ruleset.masquerade ? "masquerade traffic leaving" : nil,
                    ruleset.forwardAccept ? "forward accept for" : nil,
                ].compactMap { $0 }.joined(separator: " and ")
            ipv6Parts.append(
                "\(what) \(ipv6.network) (own subnet \(ipv6.subnet)\(ruleset.network == nil && ruleset.masquerade ? fullyRandom : ""))"
            )
        }
        if let filter = ruleset.portFilter, let peers = filter.ipv6Peers {
            ipv6Parts.append("UDP \(filter.port) over the IPv6 underlay open to \(peers.count) peer(s) only")
        }
        if !ipv6Parts.isEmpty {
            text +=
                (text.isEmpty ? "" : "; ") + ipv6Parts.joined(separator: ", ")
                + " in \(TrafficRuleset.ipv6TableSpecifier)"
        }
        return text
    }
}
