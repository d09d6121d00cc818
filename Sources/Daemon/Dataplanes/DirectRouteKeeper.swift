import Addressing
import HostGateway
import Logging
import Netlink
import Routes

/// DirectRouting beside the user-space vxlan engine: the engine keeps every peer in its table (so
/// it still accepts VXLAN from a direct peer that does not see us as direct, as flannel.1 would),
/// and the direct peers get host-gw routes, whose /24 via the PublicIP wins over the TUN's route
/// for the whole Network, so their packets never reach the engine. Each publication and the 10 s
/// resync split and apply under one lock, so a resync cannot put back an older split.
typealias DirectRouteKeeper = KernelKeeper<DirectRoutes>

extension DirectRoutes: KernelReconciling {
    /// Splits a publication and makes the kernel's direct routes its direct peers'.
    mutating func reconcileKernel(to routes: [Route], ipv6: [IPv6Peer]) throws(NetlinkError) {
        try apply(split(routes).direct)
    }

    /// Splits the last publication again (reachability may have changed) and puts back removed routes.
    mutating func resyncKernel() throws(NetlinkError) {
        guard let split = resplit() else { return }
        try apply(split.direct)
    }
}

extension KernelKeeper where Held == DirectRoutes {
    convenience init(routes: consuming DirectRoutes, logger: Logger) {
        self.init(routes, label: "vxlan", reads: "the main routing table for direct routes", logger: logger)
    }

    var enabled: Bool { withHeld { routes, _ in routes.enabled } }

    /// The subnets routed directly now (nil with DirectRouting off), for /v1/routes.
    var directSubnets: Set<IPv4Prefix>? { withHeld { routes, _ in routes.directSubnets } }

    var statistics: HostGatewayRoutes.Statistics { withHeld { routes, _ in routes.statistics } }
}
