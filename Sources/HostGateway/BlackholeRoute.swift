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
public enum BlackholeRoute {
    public static let metric = UInt32.max

    /// The route for `subnet`.
    public static func route(for subnet: IPv4Prefix) -> KernelRoute {
        KernelRoute(
            destination: subnet,
            gateway: nil,
            interfaceIndex: nil,
            routeProtocol: HostGatewayRoutes.routeProtocol,
            type: UInt8(RTN_BLACKHOLE),
            priority: metric
        )
    }

    /// What to add and delete in `table` (main-table IPv4 routes) so Weft's blackhole routes are
    /// exactly the one for `wanted` (none when nil).
    public static func plan(table: [KernelRoute], wanted: IPv4Prefix?) -> (add: KernelRoute?, delete: [KernelRoute]) {
        let ours = table.filter {
            $0.type == UInt8(RTN_BLACKHOLE) && $0.routeProtocol == HostGatewayRoutes.routeProtocol
        }
        let wantedRoute = wanted.map(route(for:))
        let isWanted = { (route: KernelRoute) in
            route.destination == wantedRoute?.destination && route.priority == wantedRoute?.priority
        }
        return (ours.contains(where: isWanted) ? nil : wantedRoute, ours.filter { !isWanted($0) })
    }

    /// What `reconcile` changed.
    public struct Change: Equatable, Sendable {
        public var added: IPv4Prefix?
        public var deleted: [IPv4Prefix] = []
        public var isEmpty: Bool { added == nil && deleted.isEmpty }

        public init(added: IPv4Prefix? = nil, deleted: [IPv4Prefix] = []) {
            self.added = added
            self.deleted = deleted
        }
    }

    /// Reads the main table and applies `plan` through netlink, in the calling thread's network namespace.
    public static func reconcile(wanted: IPv4Prefix?) throws(NetlinkError) -> Change {
        var netlink = try RouteNetlink()
        let (add, delete) = plan(table: try netlink.mainTableRoutes(), wanted: wanted)
        var change = Change()
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
