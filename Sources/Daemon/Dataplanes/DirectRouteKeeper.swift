import Addressing
import HostGateway
import Logging
import Netlink
import Routes
import Synchronization

/// DirectRouting beside the user-space vxlan engine: the engine keeps every peer in its table (so
/// it still accepts VXLAN from a direct peer that does not see us as direct, as flannel.1 would),
/// and the direct peers get host-gw routes, whose /24 via the PublicIP wins over the TUN's route
/// for the whole Network, so their packets never reach the engine. Each publication and the 10 s
/// resync split and apply under one lock, so a resync cannot put back an older split.
final class DirectRouteKeeper: Sendable {
    static let resyncInterval: Duration = .seconds(10)

    private struct State: ~Copyable {
        var routes: DirectRoutes
        /// Whether a publication was given: before that there is nothing to split.
        var published = false
    }

    private let state: Mutex<State>
    private let logger: Logger

    init(routes: consuming DirectRoutes, logger: Logger) {
        state = Mutex(State(routes: routes))
        self.logger = logger
    }

    var enabled: Bool { state.withLock { $0.routes.enabled } }

    /// The subnets routed directly now (nil with DirectRouting off), for /v1/routes.
    var directSubnets: Set<IPv4Prefix>? {
        state.withLock { $0.routes.directSubnets }
    }

    var statistics: HostGatewayRoutes.Statistics { state.withLock { $0.routes.statistics } }

    /// Splits a publication and makes the kernel's direct routes its direct peers'.
    func reconcile(_ wanted: [Route]) {
        do throws(NetlinkError) {
            try state.withLock { (state) throws(NetlinkError) in
                state.published = true
                let split = state.routes.split(wanted)
                try state.routes.apply(split.direct)
            }
        } catch {
            logger.error(
                "vxlan: cannot read the main routing table for direct routes: \(error); the next publication or the 10 s resync tries again"
            )
        }
    }

    /// Splits the last publication again (reachability may have changed) and puts back removed routes.
    func resync() {
        do throws(NetlinkError) {
            try state.withLock { (state) throws(NetlinkError) in
                guard state.published, let split = state.routes.resplit() else { return }
                try state.routes.apply(split.direct)
            }
        } catch {
            logger.error("vxlan: resync cannot read the main routing table for direct routes: \(error)")
        }
    }
}
