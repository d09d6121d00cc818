import HostGateway
import Logging
import Netlink
import Routes

/// host-gw's keeper: the routes of both families for the watcher's callback and the resync.
typealias KernelRouteKeeper = KernelKeeper<HostGatewayState>

/// host-gw's kernel routes: the IPv4 peers' and, on a dual-stack network, the IPv6 peers' (each
/// `<IPv6Subnet> via <PublicIPv6>`, as flannel's host-gw routes them), under one lock and one resync.
struct HostGatewayState: ~Copyable, Sendable, KernelReconciling {
    /// nil on an IPv6-only network; `ipv6` nil on an IPv4-only one.
    var ipv4: HostGatewayRoutes?
    var ipv6: IPv6HostGatewayRoutes?

    mutating func reconcileKernel(to routes: [Route], ipv6 peers: [IPv6Peer]) throws(NetlinkError) {
        try eachFamily(
            { () throws(NetlinkError) in _ = try ipv4?.reconcile(routes) },
            { () throws(NetlinkError) in _ = try ipv6?.reconcile(peers) }
        )
    }

    mutating func resyncKernel() throws(NetlinkError) {
        try eachFamily(
            { () throws(NetlinkError) in _ = try ipv4?.resync() },
            { () throws(NetlinkError) in _ = try ipv6?.resync() }
        )
    }
}

extension KernelKeeper where Held == HostGatewayState {
    convenience init(
        routes: consuming HostGatewayRoutes?,
        ipv6Routes: consuming IPv6HostGatewayRoutes? = nil,
        logger: Logger,
        reconciled: FirstPublication
    ) {
        self.init(
            HostGatewayState(ipv4: routes, ipv6: ipv6Routes),
            label: "host-gw",
            reads: "the main routing table",
            logger: logger,
            reconciled: reconciled
        )
    }

    /// The IPv4 routes' statistics; nil on an IPv6-only network.
    var statistics: HostGatewayRoutes.Statistics? { withHeld { state, _ in state.ipv4?.statistics } }

    /// The IPv6 routes' statistics; nil on an IPv4-only network.
    var ipv6Statistics: IPv6HostGatewayRoutes.Statistics? { withHeld { state, _ in state.ipv6?.statistics } }
}
