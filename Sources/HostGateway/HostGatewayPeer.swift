import Addressing
import Routes

/// What host-gw needs of a peer, in one family: the subnet to route, the underlay address to route
/// it via, and the backend its lease names. `Route` is an IPv4 peer, `IPv6Peer` the IPv6 half of a
/// dual-stack lease, so one `HostGatewayRoutesOf` (and `DirectRoutesOf`) serves both families.
public protocol HostGatewayPeer: Hashable, Sendable, CustomStringConvertible {
    associatedtype Address: IPAddress
    var subnet: Address.Prefix { get }
    /// The peer's PublicIP (PublicIPv6 for an IPv6 subnet): the route's gateway. Nil when the lease
    /// publishes none, which leaves the peer unroutable (refused, `noPublicAddress`).
    var publicAddress: Address? { get }
    var backend: Backend { get }
}

extension Route: HostGatewayPeer {
    public var publicAddress: IPv4Address? { nextHop.publicIP }
    public var backend: Backend { nextHop.backend }
}

/// flannel's host-gw routes a dual-stack lease's IPv6 subnet `via <PublicIPv6> dev <underlay>`: the
/// underlay is IPv6 here, unlike the engine's `IPv6Route`, whose next hop is the IPv4 underlay.
extension IPv6Peer: HostGatewayPeer, CustomStringConvertible {
    public var publicAddress: IPv6Address? { publicIPv6 }
    public var backend: Backend { nextHop.backend }

    /// e.g. "fc00:0:0:3::/64 via 2001:db8::3 host-gw".
    public var description: String {
        "\(subnet) via \(publicIPv6.map { "\($0)" } ?? "-") \(nextHop.backend.rawValue)"
    }
}
