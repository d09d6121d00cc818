import Addressing

/// How packets reach a peer: flannel's backend names, as they appear in a lease's "BackendType".
public enum Backend: String, Hashable, Sendable, CaseIterable, Codable {
    case udp
    case vxlan
    case hostGateway = "host-gw"
}

/// Where to send a packet whose destination lies in a peer's subnet.
///
/// Trivial (no references), 16 bytes: the stored properties are declared widest first so the
/// layout has no interior padding, and a lookup returns one in registers.
public struct NextHop: Hashable, Sendable {
    /// The peer's VTEP MAC (vxlan); zero for udp and host-gw.
    public var vtepMAC: MACAddress
    /// The peer's underlay address: the outer destination of an encapsulated packet.
    public var publicIP: IPv4Address
    /// The peer's UDP port: 8285 for udp, the configured port (8472 by default) for vxlan.
    public var port: UInt16
    public var backend: Backend

    @inlinable
    public init(publicIP: IPv4Address, port: UInt16, vtepMAC: MACAddress = MACAddress(0), backend: Backend) {
        self.vtepMAC = vtepMAC
        self.publicIP = publicIP
        self.port = port
        self.backend = backend
    }
}

/// One peer's subnet of either family and how to reach it: `Route` (IPv4) or `IPv6Route`. The
/// next hop is the peer's IPv4 underlay for both, as the udp backend carries inner IPv6 over it; an
/// IPv6 underlay (flannel's vxlan `flannel-v6` device) will need a next hop of its own, which
/// changes only `IPv6Routing.Hop`.
///
/// Trivial (no references); an IPv6 route is 48 bytes.
public struct RouteOf<Prefix: IPPrefix>: Hashable, Sendable {
    public var subnet: Prefix
    public var nextHop: NextHop

    @inlinable
    public init(subnet: Prefix, nextHop: NextHop) {
        self.subnet = subnet
        self.nextHop = nextHop
    }
}

public typealias Route = RouteOf<IPv4Prefix>
public typealias IPv6Route = RouteOf<IPv6Prefix>

extension RouteOf: CustomStringConvertible {
    /// One line for `weft` status output, e.g. "10.244.3.0/24 via 198.18.0.3:8472 vxlan aa:bb:cc:dd:ee:ff"
    /// or "fc00:0:0:3::/64 via 198.18.0.3:8285 udp".
    public var description: String {
        let via = "\(subnet) via \(nextHop.publicIP):\(nextHop.port) \(nextHop.backend.rawValue)"
        return nextHop.backend == .vxlan ? "\(via) \(nextHop.vtepMAC)" : via
    }
}
