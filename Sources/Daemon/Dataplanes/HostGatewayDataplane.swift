import Addressing
import Config
import ControlPlane
import Foundation
import HostGateway
import Logging
import Netlink
import Routes
import Status

/// One lease's host-gw dataplane (flannel's pkg/backend/hostgw): no TUN and no engine, the kernel
/// forwards. A PeerWatcher feeds a route table of its own, and each publication is reconciled into
/// the main table as `<peer subnet> via <peer PublicIP> dev <underlay> proto 87`; a resync every
/// 10 s puts back what someone removed, as flannel's route check does.
///
/// Stopping leaves the routes in the kernel, as flanneld does on exit: traffic keeps flowing across
/// a restart, and the next run's first reconcile removes whatever is no longer wanted (a moved
/// lease's new dataplane does the same, with the same route protocol).
final class HostGatewayDataplane: KernelLeaseDataplane {
    let subnet: IPv4Prefix
    let config: NetworkConfig
    let mtu: Int
    private let follower: KernelFollower<HostGatewayRoutes>
    private let interfaceName: String
    private let logger: Logger

    /// Opens the route socket in the process's network namespace (the host's) and starts the
    /// watcher and the resync. Throws when the interface's connected prefix cannot be read or the
    /// socket cannot be opened; no route is touched before the first publication.
    init(
        lease: AcquiredLease,
        context: DaemonContext,
        subnets: any SubnetManager,
        leaseKeeper: any LeaseKeeper
    ) throws(NetlinkError) {
        let interface = context.interface
        let logger = context.logger
        let config = lease.config
        let index = Int32(interface.index)
        let prefixLength = try HostGatewayRoutes.connectedPrefixLength(
            interfaceIndex: index,
            address: interface.address
        )
        let routes = try HostGatewayRoutes(
            interfaceIndex: index,
            address: interface.address,
            prefixLength: prefixLength,
            network: config.network,
            log: Self.logHandler(logger)
        )
        logger.info(
            "host-gw: kernel routes via \(interface.name) (index \(index)), peers must be on \(IPv4Prefix(interface.address, length: prefixLength))"
        )
        let (firstReconcile, reconciled) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        follower = KernelFollower(
            lease: lease,
            backend: .hostGateway,
            context: context,
            subnets: subnets,
            leaseKeeper: leaseKeeper,
            keeper: KernelRouteKeeper(routes: routes, logger: logger, reconciled: reconciled),
            firstReconcile: firstReconcile
        )
        self.subnet = lease.subnet
        self.config = config
        mtu = interface.mtu
        interfaceName = interface.name
        self.logger = logger
    }

    /// Returns true once the first publication is in the kernel's table, false if the calling task
    /// was cancelled before that (SIGTERM while etcd is away, say).
    func awaitFirstReconcile() async -> Bool { await follower.awaitFirstReconcile() }

    func routesReport(at now: Date) -> RoutesReport { follower.routesReport(at: now) }

    func statsReport() -> StatsReport { follower.statsReport() }

    var summary: String {
        let installed = follower.keeper.statistics.installed
        return "host-gw, \(installed) kernel route(s) via \(interfaceName), MTU \(mtu)"
    }

    /// Stops watching and resyncing; the routes stay (see the type's note). The lease is not touched.
    func stop() async {
        await follower.stop()
        let statistics = follower.keeper.statistics
        let counts =
            "\(statistics.added) added, \(statistics.replaced) replaced, \(statistics.removed) removed in this run"
        logger.info(
            "host-gw dataplane for \(subnet) stopped: \(statistics.installed) route(s) left in the kernel as flanneld leaves them; \(counts)"
        )
    }

    /// Refusals and failures are warnings; route changes are info, one line each.
    static func logHandler(_ logger: Logger) -> @Sendable (String) -> Void {
        { line in
            if line.contains("refusing") || line.contains("cannot") {
                logger.warning("\(line)")
            } else {
                logger.info("\(line)")
            }
        }
    }
}
