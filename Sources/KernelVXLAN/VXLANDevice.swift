import Addressing
import CShims
import Glibc
import Netlink
import Routes

/// flanneld's vxlan dataplane: the kernel's vxlan device flannel.<VNI> (`VXLANDevice`, IPv4 over
/// an IPv4 underlay) or flannel-v6.<VNI> (`IPv6VXLANDevice`, IPv6 over an IPv6 underlay) moves the
/// packets, and Weft only programs it over rtnetlink, as flanneld does: the device (VNI, local
/// address, underlay, port, learning off, GBP when asked, the VTEP MAC, MTU, the subnet's network
/// address as a /32 or /128, up), then per peer a neighbour, an FDB entry and an onlink route (see
/// `VXLANEntriesPlanOf`).
///
/// `reconcile` reads the kernel's entries every time rather than trusting what it did before, so
/// the first call after a restart removes the previous run's entries that are no longer wanted
/// while those still wanted stay in place (traffic does not stop), and a periodic `resync` puts
/// back what someone deleted.
///
/// Wiring in weftd: create it on a thread in the host's namespace (the socket stays bound to it),
/// call `setUp`, keep it in a `Mutex`, call `reconcile` from the peer watcher's publications and
/// `resync` every 10 s; `isPresent` (or the name's index, read without the lock) tells whether
/// someone deleted the device.
public struct VXLANDeviceOf<Peer: VXLANPeer>: ~Copyable, Sendable {
    public typealias Address = Peer.Address
    public typealias Plan = VXLANEntriesPlanOf<Peer>

    /// What `setUp` found under the device's name.
    public enum Setup: Equatable, Sendable {
        case created
        case adopted
        /// Deleted first, for the reason given.
        case replaced(String)
    }

    /// What one `reconcile` did.
    public struct Reconciliation: Equatable, Sendable {
        public var added: [Plan.PeerEntries] = []
        public var removedNeighbours: [NeighbourEntryOf<Address>] = []
        public var removedFDB: [FDBEntryOf<Address>] = []
        public var removedRoutes: [KernelRouteOf<Address>] = []
        public var refused: [Plan.Refusal] = []
        /// Peers whose entries were all in place already.
        public var kept = 0
    }

    public struct Statistics: Equatable, Sendable {
        /// Peers with their entries in the kernel after the last reconcile.
        public var peers = 0
        /// Entries written (added or rewritten) and removed in this run, each of the three kinds counted.
        public var written = 0
        public var removed = 0
        /// Peers refused by the last reconcile, by reason.
        public var refused: [VXLANRefusalReason: Int] = [:]
    }

    /// The kernel's entries on the device that Weft owns, for `weft routes`.
    public struct Listing: Equatable, Sendable {
        public var neighbours: [NeighbourEntryOf<Address>]
        public var fdb: [FDBEntryOf<Address>]
        public var routes: [KernelRouteOf<Address>]
    }

    public let wanted: VXLANLinkOf<Address>
    public let network: Address.Prefix
    public let localSubnet: Address.Prefix
    /// Our PublicIP (PublicIPv6 for flannel-v6): a peer claiming it is refused.
    public let publicIP: Address
    /// The device's index once `setUp` ran; 0 before.
    public private(set) var index: Int32 = 0
    public private(set) var statistics = Statistics()

    private var netlink: RouteNetlink
    private let log: @Sendable (String) -> Void
    private var wantedRoutes: [Peer] = []
    private var previousRefusals: Set<Plan.Refusal> = []

    /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace. Touches nothing until `setUp`.
    public init(
        link: VXLANLinkOf<Address>,
        localSubnet: Address.Prefix,
        network: Address.Prefix,
        publicIP: Address,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(NetlinkError) {
        netlink = try RouteNetlink()
        wanted = link
        self.localSubnet = localSubnet
        self.network = network
        self.publicIP = publicIP
        self.log = log
    }

    /// The device's address, flannel's: the lease subnet's network address as a /32 (/128).
    public var address: Address { localSubnet.network }

    /// Creates the device, or adopts a compatible one (see `VXLANDeviceDecision`), then sets its
    /// MAC and MTU, brings it up and makes the subnet's address (/32, /128) its only address inside
    /// the Network.
    public mutating func setUp() throws(NetlinkError) -> Setup {
        let setup: Setup
        let found = try netlink.linkState(named: wanted.name)
        // Only what differs is set: a MAC written, even the same one, makes the kernel flush the
        // device's neighbours (NETDEV_CHANGEADDR), which would cut every peer off until the reconcile.
        var mac = wanted.mac
        var mtu = wanted.mtu
        switch VXLANDeviceDecision.decide(existing: found, wanted: wanted) {
        case .create:
            index = try netlink.createVXLAN(wanted)
            setup = .created
        case .adopt(let existing):
            index = existing
            setup = .adopted
        case .replace(let existing, let reason):
            try netlink.deleteLink(index: existing)
            index = try netlink.createVXLAN(wanted)
            setup = .replaced(reason)
        case .refuse(let reason):
            throw NetlinkError("vxlan device", reason, code: EEXIST)
        }
        if case .adopted = setup {
            if found?.mac == mac { mac = nil }
            if found?.mtu == mtu { mtu = nil }
        }
        try netlink.configureLink(index: index, mac: mac, mtu: mtu)
        // Ours first: removing a device's last address would flush every route through it.
        let hostLength = Address.bitWidth
        let current = try netlink.addresses(interfaceIndex: index, Address.self)
        if !current.contains(where: { $0.address == address && $0.prefixLength == hostLength }) {
            try netlink.addAddress(address, prefixLength: hostLength, index: index)
        }
        for old in current
        where network.contains(old.address) && !(old.address == address && old.prefixLength == hostLength) {
            try netlink.deleteAddress(old)
            log("vxlan: removed address \(old.address)/\(old.prefixLength) from \(wanted.name), not our lease's")
        }
        return setup
    }

    /// Whether the device `setUp` made is still there under its name (someone may delete it).
    public func isPresent() -> Bool {
        (try? RouteNetlink.interfaceIndex(wanted.name)) == index
    }

    /// Makes the device's entries exactly those of the acceptable peers among `routes` (each
    /// publication's routes). Refused peers and per-entry kernel errors do not stop the others;
    /// only a failed dump throws.
    @discardableResult
    public mutating func reconcile(_ routes: [Peer]) throws(NetlinkError) -> Reconciliation {
        wantedRoutes = routes
        return try reconcileWanted()
    }

    /// Reconciles again with the last routes given, or with `routes` when given (DirectRouting's
    /// split made again, which may move peers): puts back what someone else removed, and brings
    /// the device up again if someone took it down (which flushed its routes).
    @discardableResult
    public mutating func resync(_ routes: [Peer]? = nil) throws(NetlinkError) -> Reconciliation {
        if let routes { wantedRoutes = routes }
        if try !netlink.linkState(index: index).isUp {
            try netlink.configureLink(index: index)
            log("vxlan: \(wanted.name) was down; brought it up again")
        }
        return try reconcileWanted()
    }

    /// The entries on the device that Weft owns, as the kernel holds them now.
    public mutating func listing() throws(NetlinkError) -> Listing {
        let index = index
        return Listing(
            neighbours: try netlink.neighbours(interfaceIndex: index, Address.self).filter(\.isPermanent),
            fdb: try netlink.fdbEntries(interfaceIndex: index, Address.self).filter { $0.destination != nil },
            routes: try netlink.mainTableRoutes(Address.self).filter { Plan.owns($0, device: index, network: network) }
        )
    }

    /// What a reconcile would change now, without changing it: entries missing or different from
    /// the last routes given, and entries no peer accounts for. Empty when the kernel is in step.
    public mutating func pending() throws(NetlinkError) -> Plan {
        try plan()
    }

    private mutating func plan() throws(NetlinkError) -> Plan {
        Plan(
            device: index,
            network: network,
            localSubnet: localSubnet,
            localAddress: publicIP,
            wanted: wantedRoutes,
            neighbours: try netlink.neighbours(interfaceIndex: index, Address.self),
            fdb: try netlink.fdbEntries(interfaceIndex: index, Address.self),
            routes: try netlink.mainTableRoutes(Address.self)
        )
    }

    private mutating func reconcileWanted() throws(NetlinkError) -> Reconciliation {
        let plan = try plan()
        var result = Reconciliation(refused: plan.refused)
        var written = 0

        // Routes first, so no route points at a neighbour that is about to go.
        result.removedRoutes = removeStale(plan.staleRoutes, "route", gone: ESRCH) {
            (netlink, route) throws(NetlinkError) in try netlink.deleteRoute(route)
        }

        var failed = Set<Address.Prefix>()
        func refuse(_ peer: Plan.PeerEntries, _ error: NetlinkError) {
            failed.insert(peer.route.subnet)
            result.refused.append(
                Plan.Refusal(
                    route: peer.route,
                    reason: .kernelError,
                    description:
                        "vxlan: refusing peer \(peer.route.subnet) at \(peer.fdb.destination.map { "\($0)" } ?? "-"): \(error)"
                )
            )
        }
        for peer in plan.peers {
            var changed = false
            do throws(NetlinkError) {
                if plan.neighbours.contains(peer.neighbour) {
                    try netlink.replaceNeighbour(peer.neighbour)
                    changed = true
                    written += 1
                }
                if plan.fdb.contains(peer.fdb) {
                    try netlink.replaceFDB(peer.fdb)
                    changed = true
                    written += 1
                }
                if plan.routes.contains(peer.kernelRoute) {
                    try netlink.replaceRoute(peer.kernelRoute)
                    changed = true
                    written += 1
                }
            } catch {
                refuse(peer, error)
                continue
            }
            if changed {
                result.added.append(peer)
                log(
                    "vxlan: peer \(peer.route.subnet): neighbour \(peer.neighbour.address) lladdr \(peer.fdb.mac), fdb dst \(peer.fdb.destination.map { "\($0)" } ?? "-"), route via \(peer.neighbour.address) onlink"
                )
            } else {
                result.kept += 1
            }
        }

        result.removedNeighbours = removeStale(plan.staleNeighbours, "neighbour", gone: ENOENT) {
            (netlink, neighbour) throws(NetlinkError) in try netlink.deleteNeighbour(neighbour)
        }
        result.removedFDB = removeStale(plan.staleFDB, "fdb entry", gone: ENOENT) {
            (netlink, entry) throws(NetlinkError) in try netlink.deleteFDB(entry)
        }
        if !(result.removedRoutes.isEmpty && result.removedNeighbours.isEmpty && result.removedFDB.isEmpty) {
            log(
                "vxlan: removed \(result.removedRoutes.count) route(s), \(result.removedNeighbours.count) neighbour(s), \(result.removedFDB.count) fdb entr(ies) no current peer accounts for"
            )
        }

        statistics.peers = plan.peers.count - failed.count
        statistics.written += written
        statistics.removed += result.removedRoutes.count + result.removedNeighbours.count + result.removedFDB.count
        statistics.refused = [:]
        var current = Set<Plan.Refusal>()
        for refusal in result.refused {
            statistics.refused[refusal.reason, default: 0] += 1
            current.insert(refusal)
            if !previousRefusals.contains(refusal) { log(refusal.description) }
        }
        previousRefusals = current
        return result
    }

    /// The `entries` that `delete` removed; one already gone (the kernel answers `gone`) is passed
    /// over, any other failure logged and left for the next reconcile.
    private mutating func removeStale<Entry>(
        _ entries: [Entry],
        _ what: String,
        gone: Int32,
        _ delete: (inout RouteNetlink, Entry) throws(NetlinkError) -> Void
    ) -> [Entry] {
        var removed: [Entry] = []
        for entry in entries {
            do throws(NetlinkError) {
                try delete(&netlink, entry)
                removed.append(entry)
            } catch  where error.code == gone {
            } catch {
                log("vxlan: cannot remove \(what) \(entry): \(error)")
            }
        }
        return removed
    }
}

public typealias VXLANDevice = VXLANDeviceOf<Route>
public typealias IPv6VXLANDevice = VXLANDeviceOf<IPv6Peer>
