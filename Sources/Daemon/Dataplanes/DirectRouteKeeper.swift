import Addressing
import HostGateway
import Logging
import Netlink
import Routes

/// DirectRouting beside the user-space vxlan engine: the engine keeps every peer in its table (so
/// it still accepts VXLAN from a direct peer that does not see us as direct, as flannel.1 would),
/// and the direct peers get host-gw routes, whose /24 via the PublicIP wins over the TUN's route
/// for the whole Network, so their packets never reach the engine. With the engine's IPv6
/// underlay, the IPv6 peers are split the same way by their PublicIPv6, as flannel splits them.
/// Each publication and the 10 s resync split and apply under one lock, so a resync cannot put
/// back an older split.
typealias DirectRouteKeeper = KernelKeeper<EngineDirectRoutes>

/// Both families' direct routes beside the engine.
struct EngineDirectRoutes: ~Copyable, Sendable, KernelReconciling {
    var ipv4: DirectRoutes
    /// Nil without the engine's IPv6 underlay.
    var ipv6: IPv6DirectRoutes?

    /// Splits a publication and makes the kernel's direct routes its direct peers'.
    mutating func reconcileKernel(to routes: [Route], ipv6 peers: [IPv6Peer]) throws(NetlinkError) {
        try eachFamily(
            { () throws(NetlinkError) in try ipv4.apply(ipv4.split(routes).direct) },
            { () throws(NetlinkError) in
                if let split = ipv6?.split(peers) { try ipv6?.apply(split.direct) }
            }
        )
    }

    /// Splits the last publication again (reachability may have changed) and puts back removed routes.
    mutating func resyncKernel() throws(NetlinkError) {
        try eachFamily(
            { () throws(NetlinkError) in
                if let split = ipv4.resplit() { try ipv4.apply(split.direct) }
            },
            { () throws(NetlinkError) in
                if let split = ipv6?.resplit() { try ipv6?.apply(split.direct) }
            }
        )
    }
}

extension KernelKeeper where Held == EngineDirectRoutes {
    convenience init(routes: consuming DirectRoutes, ipv6: consuming IPv6DirectRoutes?, logger: Logger) {
        self.init(
            EngineDirectRoutes(ipv4: routes, ipv6: ipv6),
            label: "vxlan",
            reads: "the main routing table for direct routes",
            logger: logger
        )
    }

    var enabled: Bool { withHeld { routes, _ in routes.ipv4.enabled } }

    /// The subnets routed directly now (nil with DirectRouting off), for /v1/routes.
    var directSubnets: Set<IPv4Prefix>? { withHeld { routes, _ in routes.ipv4.directSubnets } }

    var statistics: HostGatewayRoutes.Statistics { withHeld { routes, _ in routes.ipv4.statistics } }
}
