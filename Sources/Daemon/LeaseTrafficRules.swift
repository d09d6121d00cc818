import Addressing
import ControlPlane
import HostGateway
import Logging
import Netlink
import Synchronization
import TrafficRules

/// weftd's masquerade and forward rules (--ip-masq, --iptables-forward-rules) for the lease it
/// holds, and what they mean for readiness: as in flanneld, /readyz turns 200 only once they are
/// in place. A failure to apply them never stops the dataplane; weftd stays not ready, says why
/// once, and the resync keeps trying.
///
/// The same resync keeps the blackhole route of --ip-blackhole-route (`BlackholeRoute`), as
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
        /// The subnet the blackhole route is kept for (--ip-blackhole-route).
        var blackholeSubnet: IPv4Prefix?
    }
    private let state = Mutex(State())
    /// Failures to keep the blackhole route, each said once.
    private let blackholeProblems: ProblemLog

    init(context: DaemonContext, keeper: TrafficRuleKeeper = TrafficRuleKeeper()) {
        self.context = context
        self.keeper = keeper
        blackholeProblems = ProblemLog(logger: context.logger)
    }

    private var options: DaemonOptions { context.options }
    private var logger: Logger { context.logger }

    /// The rules for a Network and this host's lease subnet under weftd's flags.
    func ruleset(for network: IPv4Prefix, subnet: IPv4Prefix) -> TrafficRuleset {
        TrafficRuleset(network: network, subnet: subnet, masquerade: options.ipMasq,
                       forwardAccept: options.iptablesForwardRules, fullyRandom: !options.ipMasqFullyRandomDisable)
    }

    /// Applies the rules for `lease` (a new subnet replaces the whole table in one transaction).
    /// A failure is kept for `markReady` to report; the resync tries again.
    func install(for lease: AcquiredLease) {
        // Also without the flag: a blackhole route of an earlier run with it (or for an earlier lease) goes.
        let wanted = options.ipBlackholeRoute ? lease.subnet : nil
        state.withLock { $0.blackholeSubnet = wanted }
        keepBlackholeRoute(wanted)
        let ruleset = ruleset(for: lease.config.network, subnet: lease.subnet)
        do throws(TrafficRulesError) {
            try keeper.install(ruleset)
            succeeded()
            if !ruleset.isEmpty { logger.info("traffic rules: \(Self.describe(ruleset)) in \(TrafficRuleset.tableSpecifier)") }
        } catch {
            failed(error, fromResync: false)
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
        if options.ipBlackholeRoute { keepBlackholeRoute(state.withLock { $0.blackholeSubnet }) }
        context.subnetFile.keep()
        switch outcome {
        case .nothingWanted, .intact:
            break
        case .installed:
            logger.info("traffic rules: \(TrafficRuleset.tableSpecifier) is in place now")
            succeeded()
        case .restored(let differences):
            logger.warning("traffic rules: \(TrafficRuleset.tableSpecifier) was not as weftd keeps it (\(differences.joined(separator: "; "))); applied it again")
            succeeded()
        case .failed(let error):
            failed(error, fromResync: true)
        }
    }

    /// On a clean stop with --ip-masq-cleanup: deletes the table this run installed.
    func removeOnStop() {
        guard options.ipMasqCleanup else { return }
        do throws(TrafficRulesError) {
            if try keeper.remove() {
                logger.info("traffic rules: deleted \(TrafficRuleset.tableSpecifier) (--ip-masq-cleanup)")
            }
        } catch {
            logger.warning("\(error)")
        }
    }

    /// The rules are in: if a failure had held readiness back, give it back.
    private func succeeded() {
        let readyLine = state.withLock { state -> String? in
            defer { state.failure = nil; state.announced = false }
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

    /// Makes Weft's blackhole routes exactly the one for `subnet` (none when nil) and says what changed.
    private func keepBlackholeRoute(_ subnet: IPv4Prefix?) {
        do throws(NetlinkError) {
            let change = try BlackholeRoute.reconcile(wanted: subnet)
            let wasFailing = blackholeProblems.clear()
            for deleted in change.deleted {
                logger.info("blackhole route for \(deleted) removed (\(deleted == subnet ? "its metric was not weftd's" : subnet == nil ? "--ip-blackhole-route is off" : "not this host's lease"))")
            }
            if let added = change.added {
                logger.info("blackhole route for \(added) added, metric \(BlackholeRoute.metric) (--ip-blackhole-route)")
            } else if wasFailing, let subnet {
                logger.info("blackhole route for \(subnet) is in place now")
            }
        } catch {
            let line = "blackhole route for \(subnet.map { "\($0)" } ?? "an earlier lease") not kept: \(error); retrying every \(options.iptablesResync)"
            blackholeProblems.report(kind: line, line)
        }
    }

    static func describe(_ ruleset: TrafficRuleset) -> String {
        var parts: [String] = []
        if ruleset.masquerade {
            parts.append("masquerade traffic leaving \(ruleset.network) (own subnet \(ruleset.subnet)\(ruleset.fullyRandom ? ", fully-random" : ""))")
        }
        if ruleset.forwardAccept { parts.append("forward accept for \(ruleset.network)") }
        return parts.joined(separator: ", ")
    }
}
