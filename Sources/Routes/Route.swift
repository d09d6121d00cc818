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

/// One peer's IPv4 subnet and how to reach it (`Route`); IPv6 subnets have `IPv6Route`, which
/// adds the IPv6 underlay.
///
/// Trivial (no references).
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

extension RouteOf: CustomStringConvertible {
    /// One line for `weft` status output, e.g. "10.244.3.0/24 via 198.18.0.3:8472 vxlan aa:bb:cc:dd:ee:ff".
    public var description: String { nextHop.describe(subnet) }
}

extension NextHop {
    /// "<subnet> via 198.18.0.3:8472 vxlan aa:bb:cc:dd:ee:ff", or without the MAC for udp.
    func describe(_ subnet: some IPPrefix) -> String {
        let via = "\(subnet) via \(publicIP):\(port) \(backend.rawValue)"
        return backend == .vxlan ? "\(via) \(vtepMAC)" : via
    }
}

/// One peer's IPv6 subnet and how to reach it. `nextHop` is the peer's IPv4 next hop, as its IPv4
/// route has: inner IPv6 crosses the IPv4 underlay to it (udp; vxlan when either side has no IPv6
/// underlay), and the engine counts the peer's traffic under its PublicIP whichever underlay
/// carries it. `publicIPv6` and `vtepMAC` are the IPv6 underlay of flannel's vxlan
/// `flannel-v6.<VNI>` device: the lease's PublicIPv6 (`::` when it has none) and BackendV6Data's
/// VtepMAC.
///
/// Trivial (no references), 64 bytes: one cache line, with the fields in this order (the subnet's
/// 8-byte length leaves room for the next hop and the MAC before the 16-aligned address).
public struct IPv6Route: Hashable, Sendable {
    public var subnet: IPv6Prefix
    public var nextHop: NextHop
    public var vtepMAC: MACAddress
    public var publicIPv6: IPv6Address

    @inlinable
    public init(
        subnet: IPv6Prefix,
        nextHop: NextHop,
        publicIPv6: IPv6Address = .any,
        vtepMAC: MACAddress = MACAddress(0)
    ) {
        self.subnet = subnet
        self.publicIPv6 = publicIPv6
        self.nextHop = nextHop
        self.vtepMAC = vtepMAC
    }

    /// The peer can be reached over the IPv6 underlay (a vxlan lease with PublicIPv6).
    @inlinable public var hasIPv6Underlay: Bool { publicIPv6 != .any && nextHop.backend == .vxlan }

    /// Where a datagram over the IPv6 underlay goes.
    @inlinable public var ipv6Hop: IPv6Hop { IPv6Hop(address: publicIPv6, peer: nextHop.publicIP, port: nextHop.port) }
}

extension IPv6Route: CustomStringConvertible {
    /// "fc00:0:0:3::/64 via 198.18.0.3:8285 udp", or over the IPv6 underlay
    /// "fc00:0:0:3::/64 via [2001:db8::3]:8472 vxlan aa:bb:cc:dd:ee:ff".
    public var description: String {
        guard hasIPv6Underlay else { return nextHop.describe(subnet) }
        return "\(subnet) via [\(publicIPv6)]:\(nextHop.port) vxlan \(vtepMAC)"
    }
}

/// Where a vxlan datagram over the IPv6 underlay goes: the peer's PublicIPv6 and port, and its
/// IPv4 PublicIP, under which the engine counts it. Trivial, 32 bytes.
public struct IPv6Hop: Hashable, Sendable {
    public var address: IPv6Address
    /// The peer's IPv4 PublicIP: its name in the per-peer counters.
    public var peer: IPv4Address
    public var port: UInt16

    @inlinable
    public init(address: IPv6Address, peer: IPv4Address, port: UInt16) {
        self.address = address
        self.peer = peer
        self.port = port
    }
}
