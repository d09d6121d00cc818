import Addressing
import Config
import ControlPlane
import Foundation
import HostGateway
import KernelVXLAN
import Logging
import Netlink
import Routes
import Status

/// One lease's vxlan dataplane in the kernel (--vxlan-dataplane=kernel), flanneld's own: the
/// kernel's vxlan device flannel.<VNI> moves the packets, and weftd keeps its per-peer neighbour,
/// FDB and route entries in step with the peer routes (`VXLANDevice`). A resync every 10 s puts
/// back entries someone removed; a device someone deleted is reported through `onFailure` within
/// a second, and the run loop builds the dataplane again (flanneld recreates a deleted flannel.1).
///
/// With `DirectRouting: true` each publication is split first (`DirectRoutes`): the peers the
/// kernel reaches directly get a host-gw route via their PublicIP and no VXLAN entries, the rest
/// go through the device as without it.
///
/// Stopping leaves the device and its entries in the kernel, as flanneld does on exit: traffic
/// keeps flowing across a restart, and the next run adopts the device and removes only what is no
/// longer wanted. A weftd started with --vxlan-dataplane=weft removes the device instead.
final class KernelVXLANDataplane: KernelLeaseDataplane {
    /// How often the device's presence is checked.
    static let healthPeriod: Duration = .seconds(1)

    let subnet: IPv4Prefix
    let config: NetworkConfig
    let mtu: Int
    private let deviceName: String
    private let underlayName: String
    private let follower: KernelFollower<KernelVXLANState>
    private let health: Task<Void, Never>
    private let logger: Logger

    /// Sets up the device in the process's network namespace (the host's) and starts the watcher,
    /// the resync and the presence check. Throws when the device cannot be made or configured; no
    /// peer entry is touched before the first publication.
    init(
        lease: AcquiredLease,
        vtepMAC: MACAddress,
        context: DaemonContext,
        subnets: any SubnetManager,
        leaseKeeper: any LeaseKeeper,
        onFailure: @escaping @Sendable (String) -> Void
    ) throws(NetlinkError) {
        let interface = context.interface
        let logger = context.logger
        let config = lease.config
        let name = FlannelDevice.name(config.backend)
        let mtu = config.backend.overlayMTU(underlayMTU: interface.mtu)
        guard mtu >= 68 else {
            throw NetlinkError(
                "vxlan device",
                "\(name): an underlay MTU of \(config.backend.underlayMTU ?? interface.mtu) leaves \(mtu) (IPv4 needs 68); raise Backend.MTU or the interface's MTU",
                code: EINVAL
            )
        }
        // The local address is the interface's, as flanneld's vtepAddr is: with --public-ip behind
        // NAT the advertised address is not on this host.
        let link = VXLANLink(
            name: name,
            vni: config.backend.vni,
            local: interface.address,
            underlayIndex: Int32(interface.index),
            port: config.backend.effectivePort,
            learning: false,
            gbp: config.backend.otherKeys["GBP"] == "true",
            mac: vtepMAC,
            mtu: mtu
        )
        var device = try VXLANDevice(
            link: link,
            localSubnet: lease.subnet,
            network: config.network,
            publicIP: interface.publicIP,
            log: HostGatewayDataplane.logHandler(logger)
        )
        switch try device.setUp() {
        case .created: logger.info("vxlan: created \(name), a kernel vxlan device")
        case .adopted:
            logger.info(
                "vxlan: kept the existing kernel vxlan device \(name) and its entries (flanneld's or a previous run's)"
            )
        case .replaced(let reason): logger.info("vxlan: replaced \(name), \(reason), with a kernel vxlan device")
        }
        let index = device.index
        logger.info(
            "vxlan: kernel dataplane on \(name) (index \(index)): VNI \(link.vni), local \(interface.address) dev \(interface.name), dstport \(link.port), MAC \(vtepMAC), MTU \(mtu), address \(device.address)/32"
        )

        let direct = try DirectRoutes(
            enabled: config.backend.directRouting,
            interfaceIndex: Int32(interface.index),
            address: interface.address,
            network: config.network,
            overlayIndex: index,
            log: HostGatewayDataplane.logHandler(logger)
        )
        if direct.enabled {
            logger.info(
                "vxlan: DirectRouting on: peers directly connected through \(interface.name) get a route via their PublicIP, the rest go through \(name)"
            )
        }
        let (firstReconcile, reconciled) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let routeLog = RouteLog(logger: logger)
        follower = KernelFollower(
            lease: lease,
            backend: .vxlan,
            context: context,
            subnets: subnets,
            leaseKeeper: leaseKeeper,
            keeper: KernelVXLANKeeper(device: device, direct: direct, logger: logger, reconciled: reconciled),
            firstReconcile: firstReconcile,
            onRoutes: { routeLog.record($0) }
        )
        subnet = lease.subnet
        self.config = config
        self.mtu = mtu
        deviceName = name
        underlayName = interface.name
        self.logger = logger
        health = Task {
            while true {
                do { try await Task.sleep(for: Self.healthPeriod) } catch { return }
                guard (try? RouteNetlink.interfaceIndex(name)) != index else { continue }
                onFailure("\(name) (index \(index)) was deleted")
                return
            }
        }
    }

    /// Returns true once the first publication is in the kernel, false if the calling task was
    /// cancelled before that.
    func awaitFirstReconcile() async -> Bool { await follower.awaitFirstReconcile() }

    var summary: String {
        let direct = follower.keeper.directSubnets.map { ", \($0.count) routed directly" } ?? ""
        return
            "kernel vxlan device \(deviceName), \(follower.keeper.statistics.peers) peer(s) through it\(direct), MTU \(mtu)"
    }

    func routesReport(at now: Date) -> RoutesReport {
        follower.routesReport(
            at: now,
            kernel: follower.keeper.entries(deviceName: deviceName, underlayName: underlayName),
            direct: follower.keeper.directSubnets
        )
    }

    func statsReport() -> StatsReport { follower.statsReport() }

    /// Stops watching, resyncing and checking; the device and its entries stay (see the type's note).
    func stop() async {
        health.cancel()
        await follower.stop()
        await health.value
        let statistics = follower.keeper.statistics
        let direct = follower.keeper.directSubnets.map { " and \($0.count) direct route(s)" } ?? ""
        logger.info(
            "kernel vxlan dataplane for \(subnet) stopped: \(deviceName) and the entries of \(statistics.peers) peer(s)\(direct) left in the kernel as flanneld leaves them; \(statistics.written) entries written, \(statistics.removed) removed in this run"
        )
    }
}
