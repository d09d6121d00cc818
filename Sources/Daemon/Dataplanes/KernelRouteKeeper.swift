import HostGateway
import Logging
import Netlink
import Routes
import Synchronization

/// Holds HostGatewayRoutes for the watcher's callback and the resync task, which may run at once.
final class KernelRouteKeeper: Sendable {
    private struct State: ~Copyable {
        var routes: HostGatewayRoutes
        /// Whether a publication was given: before that a resync would reconcile to no routes and
        /// remove the previous run's, which still carry traffic.
        var published = false
    }

    private let state: Mutex<State>
    private let logger: Logger
    private let reconciled: AsyncStream<Void>.Continuation

    init(routes: consuming HostGatewayRoutes, logger: Logger, reconciled: AsyncStream<Void>.Continuation) {
        state = Mutex(State(routes: routes))
        self.logger = logger
        self.reconciled = reconciled
    }

    var statistics: HostGatewayRoutes.Statistics { state.withLock { $0.routes.statistics } }

    /// Makes the kernel's routes the publication's; the first success releases awaitFirstReconcile.
    func reconcile(_ wanted: [Route]) {
        do throws(NetlinkError) {
            try state.withLock { (state) throws(NetlinkError) in
                state.published = true
                _ = try state.routes.reconcile(wanted)
            }
            markReconciled()
        } catch {
            logger.error(
                "host-gw: cannot read the main routing table: \(error); the next publication or the 10 s resync tries again"
            )
        }
    }

    /// Reconciles the last publication again (puts back removed routes, retries a failed first one).
    func resync() {
        do throws(NetlinkError) {
            let done = try state.withLock { (state) throws(NetlinkError) -> Bool in
                guard state.published else { return false }
                _ = try state.routes.resync()
                return true
            }
            if done { markReconciled() }
        } catch {
            logger.error("host-gw: resync cannot read the main routing table: \(error)")
        }
    }

    private func markReconciled() {
        reconciled.yield()
        reconciled.finish()
    }
}
