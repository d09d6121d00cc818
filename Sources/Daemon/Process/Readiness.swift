import Synchronization

/// Whether the daemon is ready (lease held, dataplane up), and if not, why: read by /readyz,
/// set by whoever brings the lease and the engine up.
///
/// A ready daemon whose route table has not been confirmed current for longer than
/// `unconfirmedGrace` (the peer watch cannot reach etcd) reads as not ready, with that reason,
/// until the watch answers again: the dataplane keeps forwarding, but the node says it may be
/// missing peers. A shorter gap (an etcd restart, a failover) leaves it ready.
public final class Readiness: Sendable {
    /// Longer than one silent watch (10 s) and its reconnection.
    public static let unconfirmedGrace: Duration = .seconds(30)

    public struct State: Equatable, Sendable {
        public var isReady: Bool
        /// One line: why not ready, or what is running.
        public var reason: String
    }

    private let state: Mutex<State>
    /// Since when, and why, the route table is not confirmed current; nil while it is.
    private let unconfirmed = Mutex<(since: ContinuousClock.Instant, reason: String)?>(nil)
    private let grace: Duration

    public init(
        reason: String = "waiting for the subnet lease and the dataplane",
        unconfirmedGrace: Duration = Readiness.unconfirmedGrace
    ) {
        state = Mutex(State(isReady: false, reason: reason))
        grace = unconfirmedGrace
    }

    public var current: State {
        let base = state.withLock { $0 }
        guard base.isReady, let (since, reason) = unconfirmed.withLock({ $0 }) else { return base }
        let elapsed = ContinuousClock.now - since
        guard elapsed > grace else { return base }
        return State(
            isReady: false,
            reason:
                "route table not confirmed current for \(elapsed.components.seconds) s (\(reason)); forwarding with the last table meanwhile"
        )
    }

    /// The peer watch lost etcd: from `unconfirmedGrace` on, `current` says not ready.
    public func routesUnconfirmed(_ reason: String) {
        unconfirmed.withLock { if $0 == nil { $0 = (ContinuousClock.now, reason) } }
    }

    public func routesConfirmed() {
        unconfirmed.withLock { $0 = nil }
    }

    /// Returns true when this call made it ready (it was not before).
    @discardableResult
    public func markReady(_ reason: String = "ready") -> Bool {
        state.withLock { state in
            let changed = !state.isReady
            state = State(isReady: true, reason: reason)
            return changed
        }
    }

    public func markNotReady(_ reason: String) {
        state.withLock { $0 = State(isReady: false, reason: reason) }
    }
}
