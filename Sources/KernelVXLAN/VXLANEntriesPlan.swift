import Addressing
import CShims
import Netlink
import Routes

/// What one reconcile of flannel.<VNI>'s (`VXLANEntriesPlan`) or flannel-v6.<VNI>'s
/// (`IPv6VXLANEntriesPlan`) per-peer entries must do, decided from the kernel's entries and the
/// wanted peers alone: no syscalls, so every rule is testable without root.
///
/// Per peer, flannel's three entries: a permanent neighbour (ARP or NDP) `<peer subnet address>
/// lladdr <VtepMAC>`, an FDB entry `<VtepMAC> dst <PublicIP or PublicIPv6> self permanent`, and the
/// route `<peer subnet> via <peer subnet address> dev <device> onlink`. Which kernel entries are
/// Weft's to change:
/// - neighbours: the permanent ones on our device (the device is ours; the kernel's own transient
///   entries are left to it);
/// - FDB entries: those on our device with a destination (learning is off, so nobody else adds any);
/// - routes: those through our device inside the Network carrying Weft's protocol, or flanneld's
///   exact shape (proto boot, onlink via the subnet's address), which a device adopted from
///   flanneld carries. An operator's other routes through the device are left alone.
public struct VXLANEntriesPlanOf<Peer: VXLANPeer>: Equatable, Sendable {
    public typealias Address = Peer.Address
    public typealias RefusalReason = VXLANRefusalReason

    /// One peer's three entries, as the kernel should hold them.
    public struct PeerEntries: Equatable, Sendable {
        /// The peer (`route` since flannel.<VNI>'s peers are `Route`s).
        public var route: Peer
        public var neighbour: NeighbourEntryOf<Address>
        public var fdb: FDBEntryOf<Address>
        public var kernelRoute: KernelRouteOf<Address>
    }

    /// Entries to add or rewrite, per kind, in the order they are applied for a peer: neighbour and
    /// FDB before the route, so the kernel never resolves the gateway by ARP over the tunnel.
    public var neighbours: [NeighbourEntryOf<Address>] = []
    public var fdb: [FDBEntryOf<Address>] = []
    public var routes: [KernelRouteOf<Address>] = []
    /// Owned entries no wanted peer accounts for: a peer gone, a changed MAC or PublicIP, a previous run's.
    public var staleNeighbours: [NeighbourEntryOf<Address>] = []
    public var staleFDB: [FDBEntryOf<Address>] = []
    public var staleRoutes: [KernelRouteOf<Address>] = []
    /// Every accepted peer's entries (for the report), and the peers refused.
    public var peers: [PeerEntries] = []
    public var refused: [Refusal] = []

    public var isEmpty: Bool {
        neighbours.isEmpty && fdb.isEmpty && routes.isEmpty && staleNeighbours.isEmpty && staleFDB.isEmpty
            && staleRoutes.isEmpty
    }

    public struct Refusal: Hashable, Sendable, CustomStringConvertible {
        public var route: Peer
        public var reason: RefusalReason
        /// One line: which peer, why, and what to do.
        public var description: String
    }

    /// Only neighbours with this state are Weft's (see the type's note).
    static var ownedState: UInt16 { UInt16(NUD_PERMANENT) }

    public init(
        device index: Int32,
        network: Address.Prefix,
        localSubnet: Address.Prefix,
        localAddress: Address,
        wanted: [Peer],
        neighbours currentNeighbours: [NeighbourEntryOf<Address>],
        fdb currentFDB: [FDBEntryOf<Address>],
        routes table: [KernelRouteOf<Address>]
    ) {
        let ownedNeighbours = currentNeighbours.filter { $0.interfaceIndex == index && $0.isPermanent }
        let ownedFDB = currentFDB.filter { $0.interfaceIndex == index && $0.destination != nil }
        let ownedRoutes = table.filter { Self.owns($0, device: index, network: network) }

        var subnets = Set<Address.Prefix>()
        var macs: [MACAddress: Peer] = [:]
        for route in wanted {
            if let refusal = Self.refusal(
                route,
                network: network,
                localSubnet: localSubnet,
                localAddress: localAddress,
                macs: macs
            ) {
                refused.append(refusal)
                continue
            }
            // a duplicate subnet: the first route given wins; entries are nil only for what
            // `refusal` refused (no MAC, no remote)
            guard subnets.insert(route.subnet).inserted, let entries = Self.entries(for: route, device: index)
            else { continue }
            macs[entries.fdb.mac] = route
            peers.append(entries)
        }

        var keptNeighbours = Set<NeighbourEntryOf<Address>>()
        var keptFDB = Set<FDBEntryOf<Address>>()
        var keptRoutes = Set<KernelRouteOf<Address>>()
        for peer in peers {
            let gateway = peer.neighbour.address
            if let same = ownedNeighbours.first(where: { $0.address == gateway && $0.mac == peer.neighbour.mac }) {
                keptNeighbours.insert(same)
            } else {
                neighbours.append(peer.neighbour)
                // A replace rewrites the entry for the address in place.
                keptNeighbours.formUnion(ownedNeighbours.filter { $0.address == gateway })
            }

            let remotes = ownedFDB.filter { $0.mac == peer.fdb.mac }
            if let same = remotes.first(where: { $0.destination == peer.fdb.destination }) {
                keptFDB.insert(same)
            } else {
                fdb.append(peer.fdb)
                // vxlan's NLM_F_REPLACE rewrites the MAC's first remote (the first listed) in place.
                if let first = remotes.first { keptFDB.insert(first) }
            }

            let sameDestination = ownedRoutes.filter { $0.destination == peer.kernelRoute.destination }
            if let same = sameDestination.first(where: { Self.matches($0, peer.kernelRoute) }) {
                keptRoutes.insert(same)
            } else {
                routes.append(peer.kernelRoute)
                // NLM_F_REPLACE rewrites the route with the same destination and metric in place.
                keptRoutes.formUnion(sameDestination.filter { $0.priority == KernelRouteOf<Address>.defaultMetric })
            }
        }
        staleNeighbours = ownedNeighbours.filter { !keptNeighbours.contains($0) }
        staleFDB = ownedFDB.filter { !keptFDB.contains($0) }
        staleRoutes = ownedRoutes.filter { !keptRoutes.contains($0) }
    }

    /// The neighbour, FDB entry and route flannel installs for `route` on device `index`; nil for
    /// a peer without a VtepMAC or remote.
    public static func entries(for route: Peer, device index: Int32) -> PeerEntries? {
        guard let mac = route.vxlanMAC, let remote = route.vxlanRemote else { return nil }
        let gateway = route.subnet.network
        return PeerEntries(
            route: route,
            neighbour: NeighbourEntryOf(interfaceIndex: index, address: gateway, mac: mac),
            fdb: FDBEntryOf(interfaceIndex: index, mac: mac, destination: remote),
            kernelRoute: KernelRouteOf(
                destination: route.subnet,
                gateway: gateway,
                interfaceIndex: index,
                routeProtocol: routeProtocol,
                onlink: true
            )
        )
    }

    /// Weft's rtm_protocol, the one host-gw's routes carry (87, free in iproute2's and the kernel's lists).
    public static var routeProtocol: UInt8 { 87 }

    /// Whether `route` is one a reconcile may change (see the type's note).
    static func owns(_ route: KernelRouteOf<Address>, device index: Int32, network: Address.Prefix) -> Bool {
        guard route.interfaceIndex == index, route.type == UInt8(RTN_UNICAST),
            route.table == UInt32(RT_TABLE_MAIN.rawValue),
            network.contains(route.destination)
        else { return false }
        if route.routeProtocol == routeProtocol { return true }
        // flanneld's own: RouteReplace through vishvananda/netlink, whose rtmsg default is RTPROT_BOOT.
        return route.routeProtocol == UInt8(RTPROT_BOOT) && route.onlink && route.gateway == route.destination.network
    }

    /// Exactly what Weft would install.
    static func matches(_ route: KernelRouteOf<Address>, _ desired: KernelRouteOf<Address>) -> Bool {
        route.destination == desired.destination && route.gateway == desired.gateway
            && route.interfaceIndex == desired.interfaceIndex
            && route.onlink && route.routeProtocol == desired.routeProtocol
            && route.priority == KernelRouteOf<Address>.defaultMetric
    }

    static func refusal(
        _ route: Peer,
        network: Address.Prefix,
        localSubnet: Address.Prefix,
        localAddress: Address,
        macs: [MACAddress: Peer]
    ) -> Refusal? {
        let peer = "vxlan: refusing peer \(route.subnet) at \(route.vxlanRemote.map { "\($0)" } ?? "no address")"
        func refuse(_ reason: RefusalReason, _ why: String) -> Refusal {
            Refusal(route: route, reason: reason, description: "\(peer): \(why)")
        }
        let backend = route.nextHop.backend
        if backend != .vxlan {
            return refuse(
                .otherBackend,
                "its lease is for the \(backend.rawValue) backend, not vxlan; all hosts of a network must use one backend"
            )
        }
        if !network.contains(route.subnet) {
            return refuse(.outsideNetwork, "the subnet is outside the Network \(network)")
        }
        if route.subnet == localSubnet { return refuse(.ownSubnet, "that is our own lease's subnet") }
        if route.vxlanRemote == localAddress {
            let field = Address.bitWidth == 32 ? "PublicIP" : "PublicIPv6"
            return refuse(.ownAddress, "that \(field) is our own; two hosts claim it")
        }
        guard let mac = route.vxlanMAC else {
            let field = Address.bitWidth == 32 ? "BackendData" : "BackendV6Data"
            return refuse(.noMAC, "its lease has no VtepMAC; the peer must publish one in \(field)")
        }
        if route.vxlanRemote == nil {
            return refuse(.noRemote, "its lease has no PublicIPv6; the peer must publish one to be reached over IPv6")
        }
        if let other = macs[mac] {
            return refuse(
                .sharedMAC,
                "its VtepMAC \(mac) is also peer \(other.subnet)'s at \(other.vxlanRemote.map { "\($0)" } ?? "-") (a cloned host?); give one of them a new MAC"
            )
        }
        return nil
    }
}

/// Why a peer got no entries on a kernel vxlan device, either family's. Each is logged once when it
/// first appears.
public enum VXLANRefusalReason: String, Hashable, Sendable, CaseIterable {
    case otherBackend = "not a vxlan lease"
    case outsideNetwork = "outside the Network"
    case ownSubnet = "our own subnet"
    case ownAddress = "our own PublicIP"
    case noMAC = "no VtepMAC"
    /// flannel-v6's peers only: an IPv4 peer without a PublicIP never leaves the peer table.
    case noRemote = "no PublicIPv6"
    case sharedMAC = "VtepMAC of another peer"
    case kernelError = "kernel refused an entry"
}

public typealias VXLANEntriesPlan = VXLANEntriesPlanOf<Route>
public typealias IPv6VXLANEntriesPlan = VXLANEntriesPlanOf<IPv6Peer>
