import Addressing
import Glibc
import SystemCalls

/// What the engine's TUN gets once it exists, as flannel gives its device: MTU and up, the
/// subnet's network address as a /32 and the whole Network routed into the link; with an IPv6
/// half, the IPv6 subnet's network address as a /128 and the IPv6 Network routed into it too
/// (flannel's vxlan `ConfigureIPv6`). Whoever starts the engine sets it up (`configure`); the
/// addresses and routes go when the engine closes the TUN.
public struct TUNLink: Sendable {
    public var name: String
    public var mtu: Int
    /// flannel's Network.
    public var network: IPv4Prefix
    /// This host's lease.
    public var subnet: IPv4Prefix
    /// flannel's IPv6Network and this host's IPv6 lease, when the overlay carries IPv6.
    public var ipv6: (network: IPv6Prefix, subnet: IPv6Prefix)?
    /// The IPv6 network's route MTU, when inner IPv6 fits less than `mtu` (the vxlan IPv6
    /// underlay's 40-byte outer header): TCP then picks its MSS from it with no Packet Too Big.
    public var ipv6RouteMTU: Int?

    public init(
        name: String,
        mtu: Int,
        network: IPv4Prefix,
        subnet: IPv4Prefix,
        ipv6: (network: IPv6Prefix, subnet: IPv6Prefix)? = nil,
        ipv6RouteMTU: Int? = nil
    ) {
        self.name = name
        self.mtu = mtu
        self.network = network
        self.subnet = subnet
        self.ipv6 = ipv6
        self.ipv6RouteMTU = ipv6RouteMTU
    }

    /// Sets the link up as described. An address or route already there (a restart onto a
    /// persistent device) is accepted. A per-device setting that cannot be written is passed to
    /// `warn` with what it costs, and the rest goes on; the first netlink refusal throws.
    public func configure(warn: (String) -> Void) throws(NetlinkError) {
        var netlink = try RouteNetlink()
        let index = try RouteNetlink.interfaceIndex(name)
        // Before the link comes up. IPv4 only: without IPv6 on the TUN the kernel sends it no router
        // solicitations or MLD reports, which would only be counted as wrong_version drops (no such
        // file: IPv6 is off on this host already). With IPv6, a host whose default turns it off
        // would refuse the address below; that refusal is the error worth reporting, not this one.
        if ipv6 != nil {
            _ = DeviceSetting.write("0", .ipv6, name, "disable_ipv6")
            // No advertisements taken from the TUN, as flanneld sets accept_ra 0 on flannel-v6.<VNI>,
            // and no router solicitations sent into it (the engine would count each as no_route).
            for (key, what) in [
                ("router_solicitations", "router solicitations"), ("accept_ra", "router advertisements"),
            ] {
                if let problem = DeviceSetting.write("0", .ipv6, name, key) {
                    warn("\(name) keeps \(what) on (\(key)): \(problem)")
                }
            }
        } else if let problem = DeviceSetting.write("1", .ipv6, name, "disable_ipv6"),
            problem.code != ENOENT
        {
            warn("IPv6 stays on \(name); its packets will be dropped as wrong_version: \(problem)")
        }
        try netlink.setLinkUp(index: index, mtu: mtu)
        do {
            try netlink.addAddress(subnet.network, prefixLength: 32, index: index)
        } catch  where error.code == EEXIST {}
        do {
            try netlink.addRoute(network, index: index)
        } catch  where error.code == EEXIST {}
        if let ipv6 {
            do {
                try netlink.addAddress(ipv6.subnet.network, prefixLength: 128, index: index)
            } catch  where error.code == EEXIST {}
            do {
                try netlink.addRoute(ipv6.network, index: index, mtu: ipv6RouteMTU)
            } catch  where error.code == EEXIST {}
        }
        // ICMP net unreachables come out of the TUN from the TUN's own address, which the kernel
        // drops as a martian source without accept_local (flannel's proxy writes the same replies
        // without it, and they never reach the sender).
        if let problem = DeviceSetting.write("1", .ipv4, name, "accept_local") {
            warn("ICMP net unreachable replies will not reach local senders: \(problem)")
        }
    }
}
