import HostGateway
import Logging
import Netlink
import Routes

/// host-gw's keeper: HostGatewayRoutes for the watcher's callback and the resync.
typealias KernelRouteKeeper = KernelKeeper<HostGatewayRoutes>

extension HostGatewayRoutes: KernelReconciling {
    mutating func reconcileKernel(to wanted: [Route]) throws(NetlinkError) {
        _ = try reconcile(wanted)
    }

    mutating func resyncKernel() throws(NetlinkError) {
        _ = try resync()
    }
}

extension KernelKeeper where Held == HostGatewayRoutes {
    convenience init(routes: consuming HostGatewayRoutes, logger: Logger, reconciled: AsyncStream<Void>.Continuation) {
        self.init(routes, label: "host-gw", reads: "the main routing table", logger: logger, reconciled: reconciled)
    }

    var statistics: HostGatewayRoutes.Statistics { withHeld { routes, _ in routes.statistics } }
}
