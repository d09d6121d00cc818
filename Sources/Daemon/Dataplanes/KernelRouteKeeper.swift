import HostGateway
import Logging
import Netlink
import Routes

/// host-gw's keeper: the routes of both families for the watcher's callback and the resync.
typealias KernelRouteKeeper = KernelKeeper<HostGatewayState>

/// host-gw's kernel routes: the IPv4 peers' and, on a dual-stack network, the IPv6 peers' (each
/// `<IPv6Subnet> via <PublicIPv6>`, as flannel's host-gw routes them), under one lock and one resync.
struct HostGatewayState: ~Copyable, Sendable, KernelReconciling {
    var ipv4: HostGatewayRoutes
    var ipv6: IPv6HostGatewayRoutes?

    /// Both families even when the first fails, so an IPv4 table problem does not hold the IPv6
    /// routes back; the first failure is thrown for the keeper to report.
    mutating func reconcileKernel(to routes: [Route], ipv6 peers: [IPv6Peer]) throws(NetlinkError) {
        var failure: NetlinkError?
        do { _ = try ipv4.reconcile(routes) } catch { failure = error }
        do { _ = try ipv6?.reconcile(peers) } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    mutating func resyncKernel() throws(NetlinkError) {
        var failure: NetlinkError?
        do { _ = try ipv4.resync() } catch { failure = error }
        do { _ = try ipv6?.resync() } catch { failure = failure ?? error }
        if let failure { throw failure }
    }
}

extension KernelKeeper where Held == HostGatewayState {
    convenience init(
        routes: consuming HostGatewayRoutes,
        ipv6Routes: consuming IPv6HostGatewayRoutes? = nil,
        logger: Logger,
        reconciled: AsyncStream<Void>.Continuation
    ) {
        self.init(
            HostGatewayState(ipv4: routes, ipv6: ipv6Routes),
            label: "host-gw",
            reads: "the main routing table",
            logger: logger,
            reconciled: reconciled
        )
    }

    var statistics: HostGatewayRoutes.Statistics { withHeld { state, _ in state.ipv4.statistics } }

    /// The IPv6 routes' statistics; nil on an IPv4-only network.
    var ipv6Statistics: IPv6HostGatewayRoutes.Statistics? { withHeld { state, _ in state.ipv6?.statistics } }
}
