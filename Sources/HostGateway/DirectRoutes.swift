import Addressing
import Netlink
import Routes

/// vxlan's `DirectRouting: true` in the kernel, for either vxlan dataplane: each publication is
/// split by the kernel's route to every peer's PublicIP (`DirectRoutingSplit`), and the direct
/// peers get host-gw's routes `<subnet> via <PublicIP> dev <underlay> proto 87`, kept by a
/// `HostGatewayRoutes` that leaves the vxlan device's own routes alone. The caller sends the
/// tunnelled peers through VXLAN as without DirectRouting.
///
/// Order, for a peer that moves: `withdraw`, then the vxlan side is reconciled, then `apply`. A
/// peer going direct loses its VXLAN route before the direct one is added (two routes for one
/// subnet at one metric cannot coexist); a peer going back to VXLAN loses its direct route first
/// (`withdraw`), since IPv6 refuses the device's onlink route while a route for the same subnet
/// leaves through the underlay ("Nexthop has invalid gateway or device mismatch"); IPv4 would
/// rewrite it in place, and the engine's TUN carries the whole Network, so there it simply goes.
///
/// With DirectRouting off (`enabled` false) nothing is looked up and every peer is tunnelled, but
/// the first `apply` still removes the direct routes a previous run left, which would otherwise
/// take the peers' traffic past VXLAN.
///
/// `DirectRoutes` splits the IPv4 peers, `IPv6DirectRoutes` the IPv6 ones by their PublicIPv6 on
/// the underlay's IPv6 address (flannel's vxlan splits each family the same way).
public struct DirectRoutesOf<Peer: HostGatewayPeer>: ~Copyable, Sendable {
    public typealias Address = Peer.Address
    public let enabled: Bool
    public private(set) var split = DirectRoutingSplitOf<Peer>()
    private var routes: HostGatewayRoutesOf<Peer>
    private var lookups: RouteNetlink
    private let underlay: Int32
    private let log: @Sendable (String) -> Void
    /// The last routes given to `split`, for `resplit`.
    private var given: [Peer]?
    private var cleaned = false
    /// The subnets routed directly as of the last `apply` or `withdraw`; nil before the first
    /// (the kernel's table then says which a previous run left).
    private var applied: Set<Address.Prefix>?

    /// Opens two NETLINK_ROUTE sockets (routes, lookups) in the calling thread's network namespace.
    /// `overlayIndex` is the vxlan device's (flannel.<VNI> or the engine's TUN). Touches nothing yet.
    public init(
        enabled: Bool,
        interfaceIndex: Int32,
        address: Address,
        network: Address.Prefix,
        overlayIndex: Int32,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(NetlinkError) {
        // Prefix length 0: the segment check is the kernel's lookup, done before a route gets here.
        let routes = try HostGatewayRoutesOf<Peer>(
            interfaceIndex: interfaceIndex,
            address: address,
            prefixLength: 0,
            network: network,
            backend: .vxlan,
            overlayIndex: overlayIndex,
            log: log
        )
        let lookups = try RouteNetlink()
        self.routes = routes
        self.lookups = lookups
        self.enabled = enabled
        underlay = interfaceIndex
        self.log = log
    }

    public var statistics: HostGatewayRoutesOf<Peer>.Statistics { routes.statistics }

    /// The direct routes the kernel holds (`<subnet> via <PublicIP> dev <underlay> proto 87`); nil
    /// with DirectRouting off.
    public mutating func installedRoutes() throws(NetlinkError) -> [KernelRouteOf<Address>]? {
        enabled ? try routes.ownedRoutes() : nil
    }

    /// The subnets routed directly after the last split; nil with DirectRouting off.
    public var directSubnets: Set<Address.Prefix>? { enabled ? Set(split.direct.keys) : nil }

    /// Splits a publication's routes by the kernel's lookups and logs who moved; with
    /// DirectRouting off, all of them are tunnelled.
    public mutating func split(_ wanted: [Peer]) -> DirectRoutingSplitOf<Peer>.Result {
        given = wanted
        guard enabled else { return DirectRoutingSplitOf<Peer>.Result(tunnelled: wanted) }
        let underlay = underlay
        var current = split
        let result = current.split(wanted) { publicIP in
            do throws(NetlinkError) {
                return DirectRoutingSplitOf<Peer>.reach(try lookups.lookupRoute(to: publicIP), underlay: underlay)
            } catch {
                return .unreachable("\(error)")
            }
        }
        split = current
        result.moves.forEach(log)
        return result
    }

    /// Splits the last routes given again: a peer whose reachability changed without a new
    /// publication (a router added, an address moved) moves. nil before the first `split`.
    public mutating func resplit() -> DirectRoutingSplitOf<Peer>.Result? {
        guard let given else { return nil }
        return split(given)
    }

    /// Makes the kernel's direct routes exactly `direct` (a split's): adds, rewrites, and removes
    /// those of peers no longer direct. Only a failed table dump throws.
    @discardableResult
    public mutating func apply(
        _ direct: [Peer]
    ) throws(NetlinkError) -> HostGatewayRoutesOf<Peer>.Reconciliation {
        if !enabled {
            guard !cleaned else { return HostGatewayRoutesOf<Peer>.Reconciliation() }
            let removed = try routes.removeAll()
            cleaned = true
            if !removed.isEmpty {
                log("vxlan: removed \(removed.count) direct route(s) a previous run left (DirectRouting is off)")
            }
            return HostGatewayRoutesOf<Peer>.Reconciliation(removed: removed)
        }
        defer { applied = Set(direct.map(\.subnet)) }
        return try routes.reconcile(direct)
    }

    /// Before the vxlan side takes them: removes the direct routes of every subnet `result` does
    /// not keep direct (with DirectRouting off, every one a previous run left, or host-gw's with
    /// the same protocol), and adds none. Only a failed table dump throws.
    public mutating func withdraw(leaving result: DirectRoutingSplitOf<Peer>.Result) throws(NetlinkError) {
        guard enabled else {
            try apply([])
            return
        }
        let installed: Set<Address.Prefix>
        if let applied {
            installed = applied
        } else {
            installed = Set(try routes.ownedRoutes().map(\.destination))
        }
        let staying = result.direct.filter { installed.contains($0.subnet) }
        guard staying.count < installed.count else { return }
        _ = try routes.reconcile(staying)
        applied = Set(staying.map(\.subnet))
    }
}

public typealias DirectRoutes = DirectRoutesOf<Route>
public typealias IPv6DirectRoutes = DirectRoutesOf<IPv6Peer>
