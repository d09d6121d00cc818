import Synchronization

/// Whether the daemon is ready (lease held, dataplane up), and if not, why: read by /readyz,
/// set by whoever brings the lease and the engine up.
public final class Readiness: Sendable {
    public struct State: Equatable, Sendable {
        public var isReady: Bool
        /// One line: why not ready, or what is running.
        public var reason: String
    }

    private let state: Mutex<State>

    public init(reason: String = "waiting for the subnet lease and the dataplane") {
        state = Mutex(State(isReady: false, reason: reason))
    }

    public var current: State { state.withLock { $0 } }

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
