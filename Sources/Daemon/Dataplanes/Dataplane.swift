import Addressing
import Config
import ControlPlane
import Engine
import Foundation
import HostGateway
import Logging
import Netlink
import Routes

/// One lease's dataplane: the engine (TUN, sockets, workers) and the peer watcher that feeds its
/// route table. Both are bound to the subnet they were built for: a new subnet means a new
/// Dataplane, because an Engine starts once and its TUN carries the subnet's address.
final class Dataplane: Sendable {
    let leaseKey: LeaseKey
    /// The IPv4 subnet: the engine carries the IPv4 overlay (IPv6-only networks run on the kernel).
    let subnet: IPv4Prefix
    /// The network config the engine and the watcher were built with.
    let config: NetworkConfig
    let engine: Engine
    let watcher: any PeerWatching
    /// The backend of the lease (udp or vxlan), as routes name it.
    let backend: Backend
    /// When each route table was published, for /v1/routes.
    let publications: PublicationTimes
    /// A dual-stack lease's IPv6 side, for /v1/routes; nil on an IPv4-only one.
    let ipv6: IPv6Side?
    /// Ends with the watcher's first publication, once it is in the engine's tables.
    let firstPublication: FirstPublication
    /// vxlan only: DirectRouting's kernel routes (with it off, only a previous run's are removed).
    let direct: DirectRouteKeeper?
    /// Told when a worker stopped with an error (see `init`).
    private let onFailure: @Sendable (String) -> Void
    private let logger: Logger

    /// Starts the engine in the calling thread's network namespace and sets its TUN up; `run`
    /// watches the peers. Throws the engine's or the link's error (the TUN, sockets and workers the
    /// engine made are released).
    ///
    /// `onFailure` is called once, within `HealthCheck.period`, when a worker stops with an error: its
    /// TUN queue or socket broke (the TUN was deleted, for one) and the dataplane no longer moves
    /// all traffic. flanneld recreates a deleted flannel.1 the same way, through its runner.
    init(
        lease: AcquiredLease,
        vtepMAC: MACAddress,
        context: DaemonContext,
        subnets: any SubnetManager,
        keeper: any LeaseKeeper,
        onFailure: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(EngineError) {
        let options = context.options
        let logger = context.logger
        let config = lease.config
        // WeftdRunner.ipv6Refusal turns an IPv6-only network away before it gets here.
        guard let ipv4 = config.ipv4, let subnet = lease.subnet else {
            throw EngineError(
                "engine configuration",
                "an IPv6-only network (EnableIPv4 false) has no IPv4 overlay for the engine; use host-gw or --vxlan-dataplane=kernel",
                code: EINVAL
            )
        }
        let tunName = FlannelDevice.name(config.backend)
        do throws(NetlinkError) {
            if config.backend.kind == .vxlan, try FlannelDevice.removeKernelVXLAN(named: tunName) {
                logger.info(
                    "removed \(tunName), a kernel vxlan device flanneld or weftd --vxlan-dataplane=kernel left behind (it holds the vxlan port); weftd's TUN takes its name"
                )
            }
        } catch {
            throw error
        }
        // vxlan on a dual-stack lease: inner IPv6 over the IPv6 underlay from the interface's own
        // IPv6 address (as IPv4 binds its own), flannel-v6's MAC as the lease publishes it.
        let ipv6Underlay = config.backend.kind == .vxlan && lease.ipv6Subnet != nil
        let publicIPv6 = ipv6Underlay ? context.interface.ipv6Address : nil
        let engine = Engine(
            configuration: EngineConfiguration(
                tunName: tunName,
                network: ipv4.network,
                subnetLength: ipv4.subnetLength,
                localSubnet: subnet,
                // Bind the interface's own address: with --public-ip behind NAT the advertised one is not local.
                publicIP: context.interface.address,
                port: config.backend.effectivePort,
                backend: config.backend.kind == .vxlan ? .vxlan : .udp,
                vni: config.backend.vni,
                vtepMAC: vtepMAC,
                engine: options.engine,
                workers: options.workers == 0 ? ProcessInfo.processInfo.activeProcessorCount : options.workers,
                // vxlan's Backend.MTU names the underlay MTU to use instead of the interface's.
                underlayMTU: config.backend.kind == .vxlan
                    ? config.backend.underlayMTU ?? context.interface.mtu : context.interface.mtu,
                // Both backends segment and coalesce on io_uring; with --engine auto the engine
                // turns offloads off itself (one line) when it falls back to recvmmsg/sendmmsg.
                offloads: options.offloads && options.engine != .mmsg,
                busyPoll: options.busyPoll,
                // A dual-stack lease: inner IPv6 over the IPv4 underlay (udp) or the IPv6 one (vxlan).
                ipv6Network: lease.ipv6Subnet == nil ? nil : config.ipv6?.network,
                ipv6Subnet: lease.ipv6Subnet,
                ipv6SubnetLength: config.ipv6?.subnetLength,
                publicIPv6: publicIPv6,
                ipv6VtepMAC: VTEPIdentity.ipv6MAC(from: vtepMAC)
            ),
            log: { logger.info("\($0)") }
        )
        try engine.start()
        // The workers wait on a TUN that is down until this brings it up with its addresses and routes.
        do throws(NetlinkError) {
            try engine.configuration.link.configure(warn: { logger.warning("\($0)") })
        } catch {
            engine.stop()
            throw error
        }

        var direct: DirectRouteKeeper?
        if config.backend.kind == .vxlan {
            do throws(NetlinkError) {
                let interface = context.interface
                let overlayIndex = try RouteNetlink.interfaceIndex(tunName)
                let routes = try DirectRoutes(
                    enabled: config.backend.directRouting,
                    interfaceIndex: Int32(interface.index),
                    address: interface.address,
                    network: ipv4.network,
                    overlayIndex: overlayIndex,
                    log: HostGatewayDataplane.logHandler(logger)
                )
                if routes.enabled {
                    logger.info(
                        "vxlan: DirectRouting on: peers directly connected through \(interface.name) get a route via their PublicIP, past the engine; the rest go through \(tunName)"
                    )
                }
                // With the IPv6 underlay, the IPv6 peers are split by their PublicIPv6, as flannel does.
                var ipv6Routes: IPv6DirectRoutes?
                if let publicIPv6, let network = config.ipv6?.network {
                    ipv6Routes = try IPv6DirectRoutes(
                        enabled: config.backend.directRouting,
                        interfaceIndex: Int32(interface.index),
                        address: publicIPv6,
                        network: network,
                        overlayIndex: overlayIndex,
                        log: HostGatewayDataplane.logHandler(logger)
                    )
                }
                direct = DirectRouteKeeper(routes: routes, ipv6: ipv6Routes, logger: logger)
            } catch {
                engine.stop()
                throw error
            }
        }

        let routeLog = RouteLog(logger: logger)
        let publications = PublicationTimes()
        let ipv6 = IPv6Side(lease, underlay: engine.configuration.hasIPv6Underlay ? .perPeer : .ipv4)
        let ipv6Publisher = engine.ipv6Publisher
        let firstPublication = FirstPublication()
        let watcher = PeerFollowing.watcher(
            for: lease,
            context: context,
            subnets: subnets,
            keeper: keeper,
            publisher: engine.publisher,
            publications: publications,
            onPublication: { [direct] publication in
                routeLog.record(publication.routes)
                if let ipv6 {
                    ipv6.record(publication.ipv6Peers)
                    ipv6Publisher.publish(
                        IPv6RouteSnapshot(
                            routes: publication.ipv6Peers.map(\.route),
                            network: ipv6.network,
                            subnetLength: ipv6.localSubnet.length,
                            localSubnet: ipv6.localSubnet,
                            generation: publication.generation
                        )
                    )
                }
                direct?.reconcile(publication.routes, ipv6: publication.ipv6Peers)
                firstPublication.fire()
            }
        )
        self.subnet = subnet
        leaseKey = lease.leaseKey
        self.config = config
        self.engine = engine
        self.watcher = watcher
        self.backend = config.backend.kind == .vxlan ? .vxlan : .udp
        self.publications = publications
        self.ipv6 = ipv6
        self.firstPublication = firstPublication
        self.direct = direct
        self.logger = logger
        self.onFailure = onFailure
    }

    /// Watches the peers, resyncs DirectRouting's routes (with it on) and checks the workers
    /// until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watcher.run() }
            if let direct, direct.enabled { group.addTask { await direct.runResyncs() } }
            group.addTask { await self.checkWorkers() }
        }
    }

    /// Reports the first workers found stopped with an error through `onFailure`.
    private func checkWorkers() async {
        await HealthCheck.run(report: onFailure) {
            let failures = engine.workerFailures
            return failures.first.map {
                "\(failures.count) of \(engine.configuration.workers) worker(s) stopped: \($0)"
            }
        }
    }

    /// The TUN's MTU, which subnet.env announces as FLANNEL_MTU.
    var tunMTU: Int { engine.configuration.tunMTU }

    /// Once `run` has returned, stops the engine (removing the TUN with its address and route) and
    /// logs what it moved. The lease is not touched, nor DirectRouting's routes (host-gw leaves
    /// its routes the same way; the next run reconciles them).
    func stop() async {
        engine.stop()
        logger.info("engine for \(subnet) stopped: \(Self.describe(engine.counters.snapshot()))")
    }

    /// One line of the engine's totals: traffic, then each drop reason counted.
    static func describe(_ statistics: EngineStatistics) -> String {
        let traffic = WorkerCounters.Traffic.allCases
            .filter { statistics[$0] != 0 }
            .map { "\($0)=\(statistics[$0])" }
        let drops = statistics.drops.nonZero.map { "\($0.reason)=\($0.count)" }
        var text = traffic.isEmpty ? "no traffic" : traffic.joined(separator: " ")
        text += drops.isEmpty ? "; no drops" : "; drops: " + drops.joined(separator: " ")
        return text
    }

    static func logHandler(_ logger: Logger) -> ControlPlane.LogHandler {
        { level, message in
            switch level {
            case .debug: logger.debug("\(message)")
            case .info: logger.info("\(message)")
            case .warning: logger.warning("\(message)")
            }
        }
    }
}
