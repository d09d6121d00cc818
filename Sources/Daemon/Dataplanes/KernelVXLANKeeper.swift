import Addressing
import HostGateway
import KernelVXLAN
import Logging
import Netlink
import Routes
import Status

/// The kernel vxlan dataplane's keeper: the device and the direct routes for the watcher's
/// callback, the resync and the reports, under one lock, so both always follow the same split.
typealias KernelVXLANKeeper = KernelKeeper<KernelVXLANState>

/// A kernel vxlan device's entries and DirectRouting's routes, reconciled from one split.
struct KernelVXLANState: ~Copyable, Sendable, KernelReconciling {
    /// flannel.<VNI> and DirectRouting's split of the IPv4 peers; nil on an IPv6-only network.
    var device: VXLANDevice?
    var direct: DirectRoutes?
    /// flannel-v6.<VNI> of a dual-stack or IPv6-only lease, and DirectRouting's split of the IPv6 peers.
    var ipv6Device: IPv6VXLANDevice?
    var ipv6Direct: IPv6DirectRoutes?

    /// Per family, in `DirectRoutes`' order: direct routes of subnets going (back) through the
    /// device first, then the device's entries, then the direct routes, so a peer going direct has
    /// lost its VXLAN route before the direct one is added, and the reverse.
    mutating func reconcileKernel(to routes: [Route], ipv6: [IPv6Peer]) throws(NetlinkError) {
        try eachFamily(
            { () throws(NetlinkError) in
                let split = direct?.split(routes)
                if let split { try direct?.withdraw(leaving: split) }
                _ = try device?.reconcile(split?.tunnelled ?? routes)
                if let split { try direct?.apply(split.direct) }
            },
            { () throws(NetlinkError) in
                let split6 = ipv6Direct?.split(ipv6)
                if let split6 { try ipv6Direct?.withdraw(leaving: split6) }
                _ = try ipv6Device?.reconcile(split6?.tunnelled ?? ipv6)
                if let split6 { try ipv6Direct?.apply(split6.direct) }
            }
        )
    }

    mutating func resyncKernel() throws(NetlinkError) {
        try eachFamily(
            { () throws(NetlinkError) in
                let split = direct?.enabled == true ? direct?.resplit() : nil
                if let split { try direct?.withdraw(leaving: split) }
                _ = try device?.resync(split?.tunnelled)
                if let split { try direct?.apply(split.direct) }
            },
            { () throws(NetlinkError) in
                let split6 = ipv6Direct?.enabled == true ? ipv6Direct?.resplit() : nil
                if let split6 { try ipv6Direct?.withdraw(leaving: split6) }
                _ = try ipv6Device?.resync(split6?.tunnelled)
                if let split6 { try ipv6Direct?.apply(split6.direct) }
            }
        )
    }
}

extension KernelKeeper where Held == KernelVXLANState {
    convenience init(
        device: consuming VXLANDevice?,
        ipv6Device: consuming IPv6VXLANDevice?,
        direct: consuming DirectRoutes?,
        ipv6Direct: consuming IPv6DirectRoutes?,
        logger: Logger,
        reconciled: FirstPublication
    ) {
        self.init(
            KernelVXLANState(device: device, direct: direct, ipv6Device: ipv6Device, ipv6Direct: ipv6Direct),
            label: "vxlan",
            reads: "the kernel's entries",
            logger: logger,
            reconciled: reconciled
        )
    }

    /// flannel.<VNI>'s peers with entries and entries written and removed in this run; on an
    /// IPv6-only network (no flannel.<VNI>) flannel-v6.<VNI>'s.
    var counts: (peers: Int, written: Int, removed: Int) {
        withHeld { state, _ in
            if let ipv4 = state.device?.statistics { return (ipv4.peers, ipv4.written, ipv4.removed) }
            let ipv6 = state.ipv6Device?.statistics
            return (ipv6?.peers ?? 0, ipv6?.written ?? 0, ipv6?.removed ?? 0)
        }
    }

    /// The subnets routed directly now (nil with DirectRouting off), for /v1/routes.
    var directSubnets: Set<IPv4Prefix>? { withHeld { state, _ in state.direct?.directSubnets } }

    /// The entries Weft owns on the device, as `ip neigh`, `bridge fdb` and `ip route` print them,
    /// and how they differ from the last publication (nothing to compare before the first).
    /// With DirectRouting, also the routes through the underlay (`underlayName`) it holds.
    /// Nil on an IPv6-only network (no flannel.<VNI>).
    func entries(deviceName name: String, underlayName: String) -> RoutesReport.KernelEntries? {
        guard withHeld({ state, _ in state.device != nil }) else { return nil }
        func neighbour(_ entry: NeighbourEntry) -> String {
            "\(entry.address) dev \(name) lladdr \(entry.mac.map { "\($0)" } ?? "-") PERMANENT"
        }
        func fdb(_ entry: FDBEntry) -> String {
            "\(entry.mac) dev \(name) dst \(entry.destination.map { "\($0)" } ?? "-") self permanent"
        }
        func route(_ entry: KernelRoute, dev: String) -> String {
            "\(entry.destination) via \(entry.gateway.map { "\($0)" } ?? "-") dev \(dev) proto \(KernelRoute.protocolName(entry.routeProtocol))\(entry.onlink ? " onlink" : "")"
        }
        func route(_ entry: KernelRoute) -> String { route(entry, dev: name) }
        func byDestination(_ a: KernelRoute, _ b: KernelRoute) -> Bool { a.destination.network < b.destination.network }
        do throws(NetlinkError) {
            let (listing, pending, direct) = try withHeld { (state, published) throws(NetlinkError) in
                // Checked above: the device exists (and with it `direct`).
                (
                    try state.device!.listing(), published ? try state.device!.pending() : nil,
                    try state.direct?.installedRoutes()
                )
            }
            var differences: [String] = []
            if let pending {
                differences +=
                    pending.neighbours.map { "missing neighbour " + neighbour($0) }
                    + pending.fdb.map { "missing fdb " + fdb($0) }
                    + pending.routes.map { "missing route " + route($0) }
                differences +=
                    pending.staleNeighbours.map { "stale neighbour " + neighbour($0) }
                    + pending.staleFDB.map { "stale fdb " + fdb($0) }
                    + pending.staleRoutes.map { "stale route " + route($0) }
            }
            return RoutesReport.KernelEntries(
                device: name,
                neighbours: listing.neighbours.sorted { $0.address < $1.address }.map(neighbour),
                fdb: listing.fdb.sorted { $0.mac.value < $1.mac.value }.map(fdb),
                routes: listing.routes.sorted(by: byDestination).map(route),
                differences: differences,
                direct: direct?.sorted(by: byDestination).map { route($0, dev: underlayName) }
            )
        } catch {
            return RoutesReport.KernelEntries(device: name, neighbours: [], fdb: [], routes: [], error: "\(error)")
        }
    }
}
