import Addressing

/// A peer's IPv6 half: its subnet and what its lease publishes for reaching it over either underlay.
/// The peer table makes it; the dataplanes take it (the kernel vxlan flannel-v6.<VNI> device too),
/// so it lives here beside `IPv6Route` rather than in the control plane.
public struct IPv6Peer: Sendable, Hashable {
    public var subnet: IPv6Prefix
    /// The peer's IPv4 next hop (as its IPv4 route has): Weft's engine carries inner IPv6 over it
    /// when either side has no IPv6 underlay.
    public var nextHop: NextHop
    /// The lease's PublicIPv6: the IPv6 underlay of flannel's `flannel-v6.<VNI>` and host-gw's v6 routes.
    public var publicIPv6: IPv6Address?
    /// BackendV6Data's VtepMAC (vxlan leases with an IPv6 part).
    public var vtepMAC: MACAddress?

    public init(subnet: IPv6Prefix, nextHop: NextHop, publicIPv6: IPv6Address?, vtepMAC: MACAddress?) {
        self.subnet = subnet
        self.nextHop = nextHop
        self.publicIPv6 = publicIPv6
        self.vtepMAC = vtepMAC
    }

    /// The route: over the IPv6 underlay when the lease has PublicIPv6 and a v6 VtepMAC (vxlan),
    /// else over the IPv4 one.
    public var route: IPv6Route {
        guard nextHop.backend == .vxlan, let publicIPv6, let vtepMAC else {
            return IPv6Route(subnet: subnet, nextHop: nextHop)
        }
        return IPv6Route(subnet: subnet, nextHop: nextHop, publicIPv6: publicIPv6, vtepMAC: vtepMAC)
    }
}
