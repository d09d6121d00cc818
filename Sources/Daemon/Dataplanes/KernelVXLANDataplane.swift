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
final class KernelVXLANDataplane: LeaseDataplane {
    let leaseKey: LeaseKey
    let config: NetworkConfig
    let mtu: Int
    private let deviceName: String
    private let underlayName: String
    private let follower: KernelFollower<KernelVXLANState>
    /// The devices whose presence `run` checks: name and index, IPv4's first.
    private let devices: [(name: String, index: Int32)]
    private let onFailure: @Sendable (String) -> Void
    private let logger: Logger

    /// Sets up the device in the process's network namespace (the host's); `run` watches, resyncs
    /// and checks the device's presence. Throws when the device cannot be made or configured; no
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
        // flannel.<VNI> and its DirectRouting split, for the IPv4 overlay; an IPv6-only network
        // has neither, as flanneld makes flannel.<VNI> only when EnableIPv4 is true.
        var device: VXLANDevice?
        var direct: DirectRoutes?
        var index: Int32?
        if let ipv4 = config.ipv4, let subnet = lease.subnet {
            // The local address is the interface's, as flanneld's vtepAddr is: with --public-ip
            // behind NAT the advertised address is not on this host.
            let made: VXLANDevice = try Self.device(
                name,
                local: interface.address,
                mac: vtepMAC,
                mtu: mtu,
                localSubnet: subnet,
                network: ipv4.network,
                publicIP: interface.publicIP,
                config: config,
                interface: interface,
                logger: logger
            )
            logger.info(
                "vxlan: kernel dataplane on \(name) (index \(made.index)): VNI \(config.backend.vni), local \(interface.address) dev \(interface.name), dstport \(config.backend.effectivePort), MAC \(vtepMAC), MTU \(mtu), address \(made.address)/32"
            )
            let routes = try DirectRoutes(
                enabled: config.backend.directRouting,
                interfaceIndex: Int32(interface.index),
                address: interface.address,
                network: ipv4.network,
                overlayIndex: made.index,
                log: HostGatewayDataplane.logHandler(logger)
            )
            if routes.enabled {
                logger.info(
                    "vxlan: DirectRouting on: peers directly connected through \(interface.name) get a route via their PublicIP, the rest go through \(name)"
                )
            }
            index = made.index
            device = consume made
            direct = consume routes
        }

        var ipv6Index: Int32?
        let ipv6Device = try Self.ipv6Device(
            lease: lease,
            vtepMAC: vtepMAC,
            interface: interface,
            logger: logger,
            index: &ipv6Index
        )

        // flannel splits the IPv6 peers the same way, by their PublicIPv6 on the underlay.
        var ipv6Direct: IPv6DirectRoutes?
        if let ipv6Index, let address = interface.ipv6Address, let network = config.ipv6?.network {
            ipv6Direct = try IPv6DirectRoutes(
                enabled: config.backend.directRouting,
                interfaceIndex: Int32(interface.index),
                address: address,
                network: network,
                overlayIndex: ipv6Index,
                log: HostGatewayDataplane.logHandler(logger)
            )
        }
        let firstReconcile = FirstPublication()
        let routeLog = RouteLog(logger: logger)
        follower = KernelFollower(
            lease: lease,
            backend: .vxlan,
            context: context,
            subnets: subnets,
            leaseKeeper: leaseKeeper,
            keeper: KernelVXLANKeeper(
                device: device,
                ipv6Device: ipv6Device,
                direct: direct,
                ipv6Direct: ipv6Direct,
                logger: logger,
                reconciled: firstReconcile
            ),
            firstReconcile: firstReconcile,
            onRoutes: { routeLog.record($0) }
        )
        leaseKey = lease.leaseKey
        self.config = config
        // An IPv6-only network's subnet.env announces flannel-v6.<VNI>'s MTU: it is the only device.
        self.mtu = index == nil ? Self.ipv6MTU(config, interface: interface) : mtu
        deviceName = index == nil ? FlannelDevice.ipv6VXLANName(vni: config.backend.vni) : name
        underlayName = interface.name
        self.logger = logger
        self.onFailure = onFailure
        var devices: [(name: String, index: Int32)] = index.map { [(name, $0)] } ?? []
        if let ipv6Index { devices.append((FlannelDevice.ipv6VXLANName(vni: config.backend.vni), ipv6Index)) }
        self.devices = devices
    }

    /// Watches the peers, resyncs and checks that the devices are there until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.follower.run() }
            group.addTask { await self.checkDevices() }
        }
    }

    /// Reports the first device found deleted (or replaced: another index) through `onFailure`.
    private func checkDevices() async {
        await HealthCheck.run(report: onFailure) {
            devices.first { (try? RouteNetlink.interfaceIndex($0.name)) != $0.index }
                .map { "\($0.name) (index \($0.index)) was deleted" }
        }
    }

    /// One of the lease's vxlan devices, as flanneld makes it: the config's VNI, port and GBP,
    /// learning off, over `local` on the interface, created, adopted or replaced (said in one
    /// line), with accept_ra 0, since a router advertisement cannot come over the tunnel (no
    /// multicast remote) and none should configure it. An `mtu` below the family's minimum
    /// (IPv4's 68, IPv6's 1280) is refused, naming the fix.
    private static func device<Peer: VXLANPeer>(
        _ name: String,
        local: Peer.Address,
        mac: MACAddress,
        mtu: Int,
        localSubnet: Peer.Address.Prefix,
        network: Peer.Address.Prefix,
        publicIP: Peer.Address,
        config: NetworkConfig,
        interface: ExternalInterface,
        logger: Logger
    ) throws(NetlinkError) -> VXLANDeviceOf<Peer> {
        let (family, minimum) = Peer.Address.bitWidth == 32 ? ("IPv4", 68) : ("IPv6", 1280)
        guard mtu >= minimum else {
            throw NetlinkError(
                "vxlan device",
                "\(name): an underlay MTU of \(config.backend.underlayMTU ?? interface.mtu) leaves \(mtu) (\(family) needs \(minimum)); raise Backend.MTU or the interface's MTU",
                code: EINVAL
            )
        }
        let link = VXLANLinkOf<Peer.Address>(
            name: name,
            vni: config.backend.vni,
            local: local,
            underlayIndex: Int32(interface.index),
            port: config.backend.effectivePort,
            learning: false,
            gbp: config.backend.otherKeys["GBP"] == "true",
            mac: mac,
            mtu: mtu
        )
        var device = try VXLANDeviceOf<Peer>(
            link: link,
            localSubnet: localSubnet,
            network: network,
            publicIP: publicIP,
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
        if let problem = DeviceSetting.write("0", .ipv6, name, "accept_ra"), problem.code != ENOENT {
            logger.warning("vxlan: \(name) may take IPv6 router advertisements: \(problem)")
        }
        return device
    }

    /// A dual-stack lease's flannel-v6.<VNI>, as flanneld makes it: the same VNI, port and GBP over
    /// the interface's IPv6 address, BackendV6Data's MAC, the lease's IPv6 subnet as a /128, and
    /// an MTU 70 bytes below the underlay's (IPv6, UDP, VXLAN and the inner Ethernet header).
    /// Nil for an IPv4-only lease; `index` is the device's. The runner has made sure the interface
    /// has an IPv6 address.
    private static func ipv6Device(
        lease: AcquiredLease,
        vtepMAC: MACAddress,
        interface: ExternalInterface,
        logger: Logger,
        index: inout Int32?
    ) throws(NetlinkError) -> IPv6VXLANDevice? {
        let config = lease.config
        guard let subnet = lease.ipv6Subnet, let network = config.ipv6?.network else { return nil }
        let name = FlannelDevice.ipv6VXLANName(vni: config.backend.vni)
        guard let local = interface.ipv6Address else {
            throw NetlinkError("vxlan device", "\(name): \(interface.name) has no IPv6 address", code: EADDRNOTAVAIL)
        }
        let mtu = ipv6MTU(config, interface: interface)
        let mac = VTEPIdentity.ipv6MAC(from: vtepMAC)
        let device: IPv6VXLANDevice = try self.device(
            name,
            local: local,
            mac: mac,
            mtu: mtu,
            localSubnet: subnet,
            network: network,
            publicIP: interface.publicIPv6 ?? local,
            config: config,
            interface: interface,
            logger: logger
        )
        index = device.index
        logger.info(
            "vxlan: kernel dataplane for IPv6 on \(name) (index \(device.index)): local \(local) dev \(interface.name), MAC \(mac), MTU \(mtu), address \(device.address)/128"
        )
        return device
    }

    /// flannel-v6.<VNI>'s MTU: IPv6's 40-byte header where flannel.<VNI> has IPv4's 20.
    private static func ipv6MTU(_ config: NetworkConfig, interface: ExternalInterface) -> Int {
        (config.backend.underlayMTU ?? interface.mtu) - 70
    }

    /// Returns true once the first publication is in the kernel, false if the calling task was
    /// cancelled before that.
    func awaitFirstReconcile() async -> Bool { await follower.awaitFirstReconcile() }

    var summary: String {
        let direct = follower.keeper.directSubnets.map { ", \($0.count) routed directly" } ?? ""
        return
            "kernel vxlan device \(deviceName), \(follower.keeper.counts.peers) peer(s) through it\(direct), MTU \(mtu)"
    }

    func routesReport(at now: Date) -> RoutesReport {
        follower.routesReport(
            at: now,
            kernel: follower.keeper.entries(deviceName: deviceName, underlayName: underlayName),
            direct: follower.keeper.directSubnets
        )
    }

    func statsReport() -> StatsReport { follower.statsReport() }

    /// Says what it leaves: the device and its entries stay (see the type's note).
    func stop() async {
        let statistics = follower.keeper.counts
        let direct = follower.keeper.directSubnets.map { " and \($0.count) direct route(s)" } ?? ""
        logger.info(
            "kernel vxlan dataplane for \(leaseKey.label) stopped: \(deviceName) and the entries of \(statistics.peers) peer(s)\(direct) left in the kernel as flanneld leaves them; \(statistics.written) entries written, \(statistics.removed) removed in this run"
        )
    }
}
