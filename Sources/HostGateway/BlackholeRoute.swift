import Addressing
import CShims
import Glibc
import Netlink

/// flanneld's --ip-blackhole-route: a blackhole route for this host's lease subnet, so traffic for
/// an address of the subnet that no container holds is dropped on this host instead of following
/// the Network's route into the overlay.
///
/// Unlike flanneld's (metric 0), Weft's route has the highest metric there is. The bridge the
/// containers sit on (cni0, docker0) owns the connected route for the same subnet at metric 0, and
/// of two routes with one prefix the lower metric wins, so the bridge's route carries the traffic
/// whenever it exists and the blackhole catches what is left. At equal metrics the kernel would
/// try whichever came first, and a blackhole added before the bridge came up would swallow the
/// containers' traffic.
///
/// Weft's route protocol (87) marks the route as Weft's: reconciling removes only blackholes Weft
/// installed, for a subnet no longer ours or when the flag is off.
///
/// Each family is kept apart: the IPv4 lease subnet's route and, for a dual-stack lease, the IPv6
/// subnet's (`reconcile` of an IPv6Prefix reads and changes only IPv6 routes).
public enum BlackholeRoute {
    public static let metric = UInt32.max

    /// The route for `subnet`.
    public static func route<Prefix: IPPrefix>(for subnet: Prefix) -> KernelRouteOf<Prefix.Address> {
        KernelRouteOf(
            destination: subnet,
            gateway: nil,
            interfaceIndex: nil,
            routeProtocol: HostGatewayRoutes.routeProtocol,
            type: UInt8(RTN_BLACKHOLE),
            priority: metric
        )
    }

    /// What to add and delete in `table` (main-table routes of one family) so Weft's blackhole
    /// routes are exactly the one for `wanted` (none when nil).
    public static func plan<Address>(
        table: [KernelRouteOf<Address>],
        wanted: Address.Prefix?
    ) -> (add: KernelRouteOf<Address>?, delete: [KernelRouteOf<Address>]) {
        let ours = table.filter {
            $0.type == UInt8(RTN_BLACKHOLE) && $0.routeProtocol == HostGatewayRoutes.routeProtocol
        }
        let wantedRoute = wanted.map { route(for: $0) }
        let isWanted = { (route: KernelRouteOf<Address>) in
            route.destination == wantedRoute?.destination && route.priority == wantedRoute?.priority
        }
        return (ours.contains(where: isWanted) ? nil : wantedRoute, ours.filter { !isWanted($0) })
    }

    /// What `reconcile` changed.
    public struct Change<Prefix: IPPrefix>: Equatable, Sendable {
        public var added: Prefix?
        public var deleted: [Prefix] = []
        public var isEmpty: Bool { added == nil && deleted.isEmpty }

        public init(added: Prefix? = nil, deleted: [Prefix] = []) {
            self.added = added
            self.deleted = deleted
        }
    }

    /// Reads the main table and applies `plan` through netlink, in the calling thread's network
    /// namespace. `family` says which table when `wanted` is nil: IPv4Prefix.self, IPv6Prefix.self.
    public static func reconcile<Prefix: IPPrefix>(
        wanted: Prefix?,
        _ family: Prefix.Type = Prefix.self
    ) throws(NetlinkError) -> Change<Prefix> {
        var netlink = try RouteNetlink()
        let (add, delete) = plan(table: try netlink.mainTableRoutes(Prefix.Address.self), wanted: wanted)
        var change = Change<Prefix>()
        for route in delete {
            try netlink.deleteRoute(route)
            change.deleted.append(route.destination)
        }
        if let add {
            try netlink.addRoute(add)
            change.added = add.destination
        }
        return change
    }
}
