import Addressing
import CShims
import Netlink
import Routes

/// What one reconcile of flannel.<VNI>'s per-peer entries must do, decided from the kernel's
/// entries and the wanted routes alone: no syscalls, so every rule is testable without root.
///
/// Per peer, flannel's three entries: a permanent neighbour `<peer subnet .0> lladdr <VtepMAC>`,
/// an FDB entry `<VtepMAC> dst <PublicIP> self permanent`, and the route `<peer subnet> via
/// <peer subnet .0> dev flannel.<VNI> onlink`. Which kernel entries are Weft's to change:
/// - neighbours: the permanent ones on our device (the device is ours; the kernel's own transient
///   entries are left to it);
/// - FDB entries: those on our device with a destination (learning is off, so nobody else adds any);
/// - routes: those through our device inside the Network carrying Weft's protocol, or flanneld's
///   exact shape (proto boot, onlink via the subnet's .0), which a device adopted from flanneld
///   carries. An operator's other routes through the device are left alone.
public struct VXLANEntriesPlan: Equatable, Sendable {
    /// One peer's three entries, as the kernel should hold them.
    public struct PeerEntries: Equatable, Sendable {
        public var route: Route
        public var neighbour: NeighbourEntry
        public var fdb: FDBEntry
        public var kernelRoute: KernelRoute
    }

    /// Entries to add or rewrite, per kind, in the order they are applied for a peer: neighbour and
    /// FDB before the route, so the kernel never resolves the gateway by ARP over the tunnel.
    public var neighbours: [NeighbourEntry] = []
    public var fdb: [FDBEntry] = []
    public var routes: [KernelRoute] = []
    /// Owned entries no wanted peer accounts for: a peer gone, a changed MAC or PublicIP, a previous run's.
    public var staleNeighbours: [NeighbourEntry] = []
    public var staleFDB: [FDBEntry] = []
    public var staleRoutes: [KernelRoute] = []
    /// Every accepted peer's entries (for the report), and the peers refused.
    public var peers: [PeerEntries] = []
    public var refused: [Refusal] = []

    public var isEmpty: Bool {
        neighbours.isEmpty && fdb.isEmpty && routes.isEmpty && staleNeighbours.isEmpty && staleFDB.isEmpty
            && staleRoutes.isEmpty
    }

    /// Why a peer got no entries. Each is logged once when it first appears.
    public enum RefusalReason: String, Hashable, Sendable, CaseIterable {
        case otherBackend = "not a vxlan lease"
        case outsideNetwork = "outside the Network"
        case ownSubnet = "our own subnet"
        case ownAddress = "our own PublicIP"
        case noMAC = "no VtepMAC"
        case sharedMAC = "VtepMAC of another peer"
        case kernelError = "kernel refused an entry"
    }

    public struct Refusal: Hashable, Sendable, CustomStringConvertible {
        public var route: Route
        public var reason: RefusalReason
        /// One line: which peer, why, and what to do.
        public var description: String
    }

    /// Only neighbours with this state are Weft's (see the type's note).
    static let ownedState = UInt16(NUD_PERMANENT)

    public init(
        device index: Int32,
        network: IPv4Prefix,
        localSubnet: IPv4Prefix,
        localAddress: IPv4Address,
        wanted: [Route],
        neighbours currentNeighbours: [NeighbourEntry],
        fdb currentFDB: [FDBEntry],
        routes table: [KernelRoute]
    ) {
        let ownedNeighbours = currentNeighbours.filter { $0.interfaceIndex == index && $0.isPermanent }
        let ownedFDB = currentFDB.filter { $0.interfaceIndex == index && $0.destination != nil }
        let ownedRoutes = table.filter { Self.owns($0, device: index, network: network) }

        var subnets = Set<IPv4Prefix>()
        var macs: [MACAddress: Route] = [:]
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
            // a duplicate subnet: the first route given wins
            guard subnets.insert(route.subnet).inserted else { continue }
            macs[route.nextHop.vtepMAC] = route
            peers.append(Self.entries(for: route, device: index))
        }

        var keptNeighbours = Set<NeighbourEntry>()
        var keptFDB = Set<FDBEntry>()
        var keptRoutes = Set<KernelRoute>()
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
                keptRoutes.formUnion(sameDestination.filter { $0.priority == 0 })
            }
        }
        staleNeighbours = ownedNeighbours.filter { !keptNeighbours.contains($0) }
        staleFDB = ownedFDB.filter { !keptFDB.contains($0) }
        staleRoutes = ownedRoutes.filter { !keptRoutes.contains($0) }
    }

    /// The neighbour, FDB entry and route flannel installs for `route` on device `index`.
    public static func entries(for route: Route, device index: Int32) -> PeerEntries {
        let gateway = route.subnet.network
        return PeerEntries(
            route: route,
            neighbour: NeighbourEntry(interfaceIndex: index, address: gateway, mac: route.nextHop.vtepMAC),
            fdb: FDBEntry(interfaceIndex: index, mac: route.nextHop.vtepMAC, destination: route.nextHop.publicIP),
            kernelRoute: KernelRoute(
                destination: route.subnet,
                gateway: gateway,
                interfaceIndex: index,
                routeProtocol: VXLANEntriesPlan.routeProtocol,
                onlink: true
            )
        )
    }

    /// Weft's rtm_protocol, the one host-gw's routes carry (87, free in iproute2's and the kernel's lists).
    public static let routeProtocol: UInt8 = 87

    /// Whether `route` is one a reconcile may change (see the type's note).
    static func owns(_ route: KernelRoute, device index: Int32, network: IPv4Prefix) -> Bool {
        guard route.interfaceIndex == index, route.type == UInt8(RTN_UNICAST),
            route.table == UInt32(RT_TABLE_MAIN.rawValue),
            network.contains(route.destination)
        else { return false }
        if route.routeProtocol == routeProtocol { return true }
        // flanneld's own: RouteReplace through vishvananda/netlink, whose rtmsg default is RTPROT_BOOT.
        return route.routeProtocol == UInt8(RTPROT_BOOT) && route.onlink && route.gateway == route.destination.network
    }

    /// Exactly what Weft would install.
    static func matches(_ route: KernelRoute, _ desired: KernelRoute) -> Bool {
        route.destination == desired.destination && route.gateway == desired.gateway
            && route.interfaceIndex == desired.interfaceIndex
            && route.onlink && route.routeProtocol == desired.routeProtocol && route.priority == 0
    }

    static func refusal(
        _ route: Route,
        network: IPv4Prefix,
        localSubnet: IPv4Prefix,
        localAddress: IPv4Address,
        macs: [MACAddress: Route]
    ) -> Refusal? {
        let peer = "vxlan: refusing peer \(route.subnet) at \(route.nextHop.publicIP)"
        func refuse(_ reason: RefusalReason, _ why: String) -> Refusal {
            Refusal(route: route, reason: reason, description: "\(peer): \(why)")
        }
        if route.nextHop.backend != .vxlan {
            return refuse(
                .otherBackend,
                "its lease is for the \(route.nextHop.backend.rawValue) backend, not vxlan; all hosts of a network must use one backend"
            )
        }
        if !network.contains(route.subnet) {
            return refuse(.outsideNetwork, "the subnet is outside the Network \(network)")
        }
        if route.subnet == localSubnet { return refuse(.ownSubnet, "that is our own lease's subnet") }
        if route.nextHop.publicIP == localAddress {
            return refuse(.ownAddress, "that PublicIP is our own; two hosts claim it")
        }
        if route.nextHop.vtepMAC == MACAddress(0) {
            return refuse(.noMAC, "its lease has no VtepMAC; the peer must publish one in BackendData")
        }
        if let other = macs[route.nextHop.vtepMAC] {
            return refuse(
                .sharedMAC,
                "its VtepMAC \(route.nextHop.vtepMAC) is also peer \(other.subnet)'s at \(other.nextHop.publicIP) (a cloned host?); give one of them a new MAC"
            )
        }
        return nil
    }
}
