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
/// 10 s puts back what someone removed, as flannel's route check does. A dual-stack lease adds
/// `<peer IPv6Subnet> via <peer PublicIPv6>` on the same interface, kept the same way.
///
/// Stopping leaves the routes in the kernel, as flanneld does on exit: traffic keeps flowing across
/// a restart, and the next run's first reconcile removes whatever is no longer wanted (a moved
/// lease's new dataplane does the same, with the same route protocol).
final class HostGatewayDataplane: LeaseDataplane {
    let leaseKey: LeaseKey
    let config: NetworkConfig
    let mtu: Int
    private let follower: KernelFollower<HostGatewayState>
    private let interfaceName: String
    private let logger: Logger

    /// Opens the route socket in the process's network namespace (the host's); `run` watches and
    /// resyncs. Throws when the interface's connected prefix cannot be read or the
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
        // An IPv6-only network routes IPv6 alone, as flannel's hostgw adds its IPv4 half only when
        // EnableIPv4 is true.
        var routes: HostGatewayRoutes?
        if let network = config.network {
            routes = try Self.routes(address: interface.address, network: network, interface: interface, logger: logger)
        }
        let ipv6Routes = try Self.ipv6Routes(lease: lease, interface: interface, logger: logger)
        let firstReconcile = FirstPublication()
        follower = KernelFollower(
            lease: lease,
            backend: .hostGateway,
            context: context,
            subnets: subnets,
            leaseKeeper: leaseKeeper,
            keeper: KernelRouteKeeper(
                routes: routes,
                ipv6Routes: ipv6Routes,
                logger: logger,
                reconciled: firstReconcile
            ),
            firstReconcile: firstReconcile
        )
        leaseKey = lease.leaseKey
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

    /// The IPv6 routes of a dual-stack lease, on the interface's IPv6 segment; nil without one.
    /// The runner has made sure the interface has an IPv6 address (`WeftdRunner.ipv6Refusal`).
    private static func ipv6Routes(
        lease: AcquiredLease,
        interface: ExternalInterface,
        logger: Logger
    ) throws(NetlinkError) -> IPv6HostGatewayRoutes? {
        guard let network = lease.config.ipv6?.network, lease.ipv6Subnet != nil else { return nil }
        guard let address = interface.ipv6Address else {
            throw NetlinkError("host-gw interface", "\(interface.name) has no IPv6 address", code: EADDRNOTAVAIL)
        }
        let routes: IPv6HostGatewayRoutes = try self.routes(
            address: address,
            network: network,
            interface: interface,
            logger: logger
        )
        return routes
    }

    /// One family's routes via `interface`, whose address there is `address`: peers must be on its
    /// connected prefix (said in one line).
    private static func routes<Peer: HostGatewayPeer>(
        address: Peer.Address,
        network: Peer.Address.Prefix,
        interface: ExternalInterface,
        logger: Logger
    ) throws(NetlinkError) -> HostGatewayRoutesOf<Peer> {
        let index = Int32(interface.index)
        let prefixLength = try HostGatewayRoutesOf<Peer>.connectedPrefixLength(interfaceIndex: index, address: address)
        let family = Peer.Address.bitWidth == 32 ? "" : "IPv6 "
        logger.info(
            "host-gw: \(family)kernel routes via \(interface.name) (index \(index)), peers must be on \(Peer.Address.Prefix(address, length: prefixLength))"
        )
        return try HostGatewayRoutesOf<Peer>(
            interfaceIndex: index,
            address: address,
            prefixLength: prefixLength,
            network: network,
            log: logHandler(logger)
        )
    }

    var summary: String {
        let counts = [
            follower.keeper.statistics.map { "\($0.installed)" },
            follower.keeper.ipv6Statistics.map { "\($0.installed) IPv6" },
        ]
        return
            "host-gw, \(counts.compactMap { $0 }.joined(separator: " and ")) kernel route(s) via \(interfaceName), MTU \(mtu)"
    }

    /// Watches the peers and resyncs until cancelled.
    func run() async { await follower.run() }

    /// Says what it leaves: the routes stay (see the type's note). The lease is not touched.
    func stop() async {
        var counts: [String] = []
        var left: [String] = []
        if let ipv4 = follower.keeper.statistics {
            counts.append("\(ipv4.added) added, \(ipv4.replaced) replaced, \(ipv4.removed) removed in this run")
            left.append("\(ipv4.installed)")
        }
        if let ipv6 = follower.keeper.ipv6Statistics {
            counts.append("IPv6 \(ipv6.added) added, \(ipv6.replaced) replaced, \(ipv6.removed) removed")
            left.append("\(ipv6.installed) IPv6")
        }
        logger.info(
            "host-gw dataplane for \(leaseKey.label) stopped: \(left.joined(separator: " and ")) route(s) left in the kernel as flanneld leaves them; \(counts.joined(separator: "; "))"
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
