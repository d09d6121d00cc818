import Addressing
import Routes

/// What host-gw needs of a peer, in one family: the subnet to route, the underlay address to route
/// it via, and the backend its lease names. `Route` is an IPv4 peer; `IPv6PeerRoute` an IPv6 one,
/// so one `HostGatewayRoutesOf` (and `DirectRoutesOf`) serves both families.
public protocol HostGatewayPeer: Hashable, Sendable, CustomStringConvertible {
    associatedtype Address: IPAddress
    var subnet: Address.Prefix { get }
    /// The peer's PublicIP (PublicIPv6 for an IPv6 subnet): the route's gateway.
    var publicAddress: Address { get }
    var backend: Backend { get }
}

extension Route: HostGatewayPeer {
    public var publicAddress: IPv4Address { nextHop.publicIP }
    public var backend: Backend { nextHop.backend }
}

/// A peer's IPv6 subnet and its PublicIPv6, as flannel's host-gw routes a dual-stack or IPv6-only
/// lease (`<IPv6Subnet> via <PublicIPv6> dev <underlay>`): the underlay is IPv6 here, unlike
/// `IPv6Route`'s, whose next hop is the IPv4 underlay the udp backend tunnels over.
public struct IPv6PeerRoute: HostGatewayPeer {
    public var subnet: IPv6Prefix
    public var publicAddress: IPv6Address
    public var backend: Backend

    public init(subnet: IPv6Prefix, publicIPv6: IPv6Address, backend: Backend) {
        self.subnet = subnet
        publicAddress = publicIPv6
        self.backend = backend
    }

    /// e.g. "fc00:0:0:3::/64 via 2001:db8::3 host-gw".
    public var description: String { "\(subnet) via \(publicAddress) \(backend.rawValue)" }
}
