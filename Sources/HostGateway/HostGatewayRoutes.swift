import Addressing
import CShims
import Glibc
import Netlink
import Routes

/// flannel's host-gw backend: the kernel forwards, Weft only keeps one main-table route per peer,
/// `<peer subnet> via <peer PublicIP> dev <underlay> proto 87`, in step with the peer routes.
///
/// Ownership is the route protocol: Weft adds, replaces and deletes only routes carrying
/// `routeProtocol` whose destination lies inside `network` (so two Weft daemons serving two
/// networks on one host leave each other alone). Any other route is foreign and never touched; a
/// foreign route for a peer's exact subnet makes that peer refused instead.
///
/// `reconcile` reads the kernel's table every time rather than trusting what it did before, so the
/// first call after a restart removes the previous run's routes that are no longer wanted (while
/// the ones still wanted stay in place, without a gap in traffic), and a periodic `resync` puts
/// back a route someone deleted, as flannel's 10 s check does.
///
/// Wiring in weftd: create it on the thread that is in the host's namespace, with the underlay's
/// index and address (`connectedPrefixLength` supplies the prefix), keep it in a `Mutex`, call
/// `reconcile(publication.routes)` from PeerWatcher's `onPublish` and `resync()` every 10 s.
///
/// One family per instance: `HostGatewayRoutes` keeps the IPv4 routes (peers' PublicIPs), and
/// `IPv6HostGatewayRoutes` the IPv6 ones (`<IPv6Subnet> via <PublicIPv6>`), each reading and
/// owning only its family's table.
public struct HostGatewayRoutesOf<Peer: HostGatewayPeer>: ~Copyable, Sendable {
    public typealias Address = Peer.Address
    public typealias Prefix = Peer.Address.Prefix
    /// Weft's rtm_protocol. /etc/iproute2/rt_protos and linux/rtnetlink.h assign 0–4, 8–18, 42, 99,
    /// 186–189 and 192; 87 ('W') is free in both. flannel installs RTPROT_BOOT (3), vishvananda/
    /// netlink's NewRtMsg default and also what every `ip route add` without `proto` gets, so its
    /// routes cannot be told from an operator's; a number of Weft's own is what makes stale-route
    /// cleanup safe. "87 weft" in /etc/iproute2/rt_protos.d/weft.conf makes `ip route` print the name.
    public static var routeProtocol: UInt8 { 87 }

    /// Why a peer got no route. Each is logged once when it first appears.
    public enum RefusalReason: String, Hashable, Sendable, CaseIterable {
        /// The PublicIP is outside our interface's connected prefix: not a neighbour on our L2 segment.
        case offSegment = "not on our L2 segment"
        /// The PublicIP is our own interface address.
        case ownAddress = "our own address"
        /// The route's backend is not host-gw.
        case otherBackend = "not a host-gw lease"
        /// The lease publishes no address to route via (a dual-stack lease without PublicIPv6).
        case noPublicAddress = "no PublicIPv6 in its lease"
        /// The subnet lies outside the flannel Network, where Weft owns no routes.
        case outsideNetwork = "outside the Network"
        /// A route with another protocol already exists for the subnet.
        case foreignRoute = "foreign route in the way"
        /// The kernel refused the route.
        case kernelError = "kernel refused the route"
    }

    public struct Refusal: Hashable, Sendable, CustomStringConvertible {
        public var route: Peer
        public var reason: RefusalReason
        /// One line: which peer, why, and what to do.
        public var description: String
    }

    /// What one `reconcile` did.
    public struct Reconciliation: Sendable, Equatable {
        public var added: [KernelRouteOf<Address>] = []
        public var replaced: [KernelRouteOf<Address>] = []
        public var removed: [KernelRouteOf<Address>] = []
        /// Wanted routes already in the kernel as wanted.
        public var kept = 0
        public var refused: [Refusal] = []
    }

    public struct Statistics: Sendable, Equatable {
        /// Weft routes in the kernel after the last reconcile.
        public var installed = 0
        public var added = 0
        public var replaced = 0
        public var removed = 0
        /// Peers refused by the last reconcile, by reason.
        public var refused: [RefusalReason: Int] = [:]
        /// Refusals logged so far (each newly appearing peer-and-reason counts once).
        public var refusalsLogged = 0
    }

    public let interfaceIndex: Int32
    public let interfaceAddress: Address
    /// The interface's connected prefix: the L2 segment every peer's PublicIP must lie in.
    public let segment: Prefix
    /// flannel's Network (IPv6Network): the range in which routes with `routeProtocol` belong to this instance.
    public let network: Prefix
    /// The backend the peers' leases name: host-gw, or vxlan when these are DirectRouting's routes.
    public let backend: Backend
    /// vxlan's device (flannel.<VNI> or the engine's TUN), whose routes are never this instance's.
    public let overlayIndex: Int32?
    public private(set) var statistics = Statistics()

    private var netlink: RouteNetlink
    private let log: @Sendable (String) -> Void
    private var wanted: [Peer] = []
    private var previousRefusals: Set<RefusalKey> = []

    /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace; it stays bound to
    /// that namespace whichever thread calls later. Touches no route until `reconcile`.
    ///
    /// For vxlan's DirectRouting give `backend` .vxlan and the vxlan device's index as
    /// `overlayIndex`: the peers are then vxlan leases, and the device's own routes (which carry
    /// the same protocol) are left to the vxlan dataplane.
    public init(
        interfaceIndex: Int32,
        address: Address,
        prefixLength: Int,
        network: Prefix,
        backend: Backend = .hostGateway,
        overlayIndex: Int32? = nil,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(NetlinkError) {
        guard (0...Address.bitWidth).contains(prefixLength) else {
            throw NetlinkError(
                "host-gw interface",
                "\(address)/\(prefixLength): prefix length outside 0...\(Address.bitWidth)",
                code: EINVAL
            )
        }
        let socket = try RouteNetlink()
        self.interfaceIndex = interfaceIndex
        interfaceAddress = address
        segment = Prefix(address, length: prefixLength)
        self.network = network
        self.backend = backend
        self.overlayIndex = overlayIndex
        self.log = log
        netlink = socket
    }

    /// What log lines and refusals start with: "host-gw", or "vxlan direct routing".
    static func logPrefix(_ backend: Backend) -> String {
        backend == .hostGateway ? "host-gw" : "\(backend.rawValue) direct routing"
    }

    /// The L2 segment of `address` on the interface: the kernel's connected route for it (proto
    /// kernel, unicast, no gateway, on that device, holding the address; the longest if several),
    /// for callers that know the address but not its prefix length (getifaddrs gives none). Not
    /// the scope: IPv4's connected routes have link scope, IPv6's universe.
    public static func connectedPrefixLength(interfaceIndex: Int32, address: Address) throws(NetlinkError) -> Int {
        var netlink = try RouteNetlink()
        let connected = try netlink.mainTableRoutes(Address.self).filter {
            $0.routeProtocol == UInt8(RTPROT_KERNEL) && $0.type == UInt8(RTN_UNICAST) && $0.gateway == nil
                && $0.interfaceIndex == interfaceIndex && $0.destination.contains(address)
        }
        guard let longest = connected.max(by: { $0.destination.length < $1.destination.length }) else {
            throw NetlinkError(
                "host-gw interface",
                "\(address) on interface index \(interfaceIndex): no connected route in the main table "
                    + "(address added with noprefixroute?); give the prefix length explicitly",
                code: ENOENT
            )
        }
        return longest.destination.length
    }

    /// Makes the kernel's Weft routes exactly the acceptable ones among `routes` (each Publication's
    /// routes). Refused peers and per-route kernel errors do not stop the others; only a failed
    /// table dump throws.
    @discardableResult
    public mutating func reconcile(_ routes: [Peer]) throws(NetlinkError) -> Reconciliation {
        wanted = routes
        return try reconcileWanted()
    }

    /// Reconciles again with the last routes given: puts back what someone else removed.
    @discardableResult
    public mutating func resync() throws(NetlinkError) -> Reconciliation {
        try reconcileWanted()
    }

    /// Deletes every route this instance owns (for a backend switch; flannel leaves them on exit).
    @discardableResult
    public mutating func removeAll() throws(NetlinkError) -> [KernelRouteOf<Address>] {
        wanted = []
        return try reconcileWanted().removed
    }

    /// The routes the kernel's main table holds that this keeper owns, as the next reconcile sees them.
    public mutating func ownedRoutes() throws(NetlinkError) -> [KernelRouteOf<Address>] {
        HostGatewayPlan<Peer>.owned(
            try netlink.mainTableRoutes(Address.self),
            network: network,
            overlayIndex: overlayIndex
        )
    }

    private mutating func reconcileWanted() throws(NetlinkError) -> Reconciliation {
        let plan = HostGatewayPlan(
            table: try netlink.mainTableRoutes(Address.self),
            wanted: wanted,
            interfaceIndex: interfaceIndex,
            address: interfaceAddress,
            segment: segment,
            network: network,
            backend: backend,
            overlayIndex: overlayIndex
        )
        let prefix = Self.logPrefix(backend)
        var result = Reconciliation(kept: plan.kept.count, refused: plan.refused)
        var removals = plan.removals
        for step in plan.steps {
            let desired = step.desired
            do throws(NetlinkError) {
                if let old = step.replacing {
                    try netlink.replaceRoute(desired)
                    result.replaced.append(desired)
                    log("\(prefix): route \(desired) replaces \(old)")
                } else {
                    try netlink.addRoute(desired)
                    result.added.append(desired)
                    log("\(prefix): added route \(desired)")
                }
            } catch {
                // A route that could not be rewritten still points at the old gateway: remove it.
                if let old = step.replacing { removals.append(old) }
                result.refused.append(
                    Refusal(
                        route: step.route,
                        reason: .kernelError,
                        description:
                            "\(prefix): refusing peer \(step.route.subnet) at \(step.route.publicAddress.map { "\($0)" } ?? "-"): \(error)"
                    )
                )
            }
        }

        for route in removals {
            do throws(NetlinkError) {
                try netlink.deleteRoute(route)
                result.removed.append(route)
                log("\(prefix): removed route \(route)")
            } catch  where error.code == ESRCH {
                // Already gone: someone else removed it between the dump and now.
            } catch {
                log("\(prefix): cannot remove route \(route): \(error)")
            }
        }

        record(result, installed: result.kept + result.added.count + result.replaced.count)
        return result
    }

    private struct RefusalKey: Hashable {
        var subnet: Prefix
        var publicIP: Address?
        var reason: RefusalReason
    }

    private mutating func record(_ result: Reconciliation, installed: Int) {
        statistics.installed = installed
        statistics.added += result.added.count
        statistics.replaced += result.replaced.count
        statistics.removed += result.removed.count
        statistics.refused = [:]
        var current = Set<RefusalKey>()
        for refusal in result.refused {
            statistics.refused[refusal.reason, default: 0] += 1
            let key = RefusalKey(
                subnet: refusal.route.subnet,
                publicIP: refusal.route.publicAddress,
                reason: refusal.reason
            )
            current.insert(key)
            if !previousRefusals.contains(key) {
                statistics.refusalsLogged += 1
                log(refusal.description)
            }
        }
        previousRefusals = current
    }
}

public typealias HostGatewayRoutes = HostGatewayRoutesOf<Route>
public typealias IPv6HostGatewayRoutes = HostGatewayRoutesOf<IPv6Peer>
