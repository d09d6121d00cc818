import Addressing
import TestThreads

/// Inner IPv6 on `TwoHostBed`, over the same IPv4 underlay: the containers get fc00:0:0:N::2/64
/// beside their IPv4 addresses, behind fc00:0:0:N::1/64 on their host's ctr0.
extension TwoHostBed {
    static let ipv6Network = IPv6Prefix("fc00::/48")!
    static let ipv6SubnetA = IPv6Prefix("fc00:0:0:1::/64")!
    static let ipv6SubnetB = IPv6Prefix("fc00:0:0:2::/64")!
    static let ipv6ContainerA = IPv6Address("fc00:0:0:1::2")!
    static let ipv6ContainerB = IPv6Address("fc00:0:0:2::2")!

    /// `TwoHostBed` turns IPv6 off in the hosts; this turns it on, with forwarding, and gives each
    /// container its IPv6 address and default route. No duplicate address detection, link-local
    /// addresses included: a tentative one leaves neighbour discovery waiting a second.
    func enableIPv6() throws {
        for (host, container, subnet, address) in [
            (hostA, containerA, Self.ipv6SubnetA, Self.ipv6ContainerA),
            (hostB, containerB, Self.ipv6SubnetB, Self.ipv6ContainerB),
        ] {
            try Self.sysctl(container, "net.ipv6.conf.eth0.accept_dad=0")
            try Self.sysctl(
                host,
                "net.ipv6.conf.ctr0.accept_dad=0",
                "net.ipv6.conf.all.disable_ipv6=0",
                "net.ipv6.conf.default.disable_ipv6=0",
                "net.ipv6.conf.ctr0.disable_ipv6=0",
                "net.ipv6.conf.all.forwarding=1"
            )
            let gateway = IPv6Address(subnet.network.value | 1)
            try Self.mustRun(host, ["ip", "-6", "addr", "add", "\(gateway)/64", "dev", "ctr0", "nodad"])
            try Self.mustRun(container, ["ip", "-6", "addr", "add", "\(address)/64", "dev", "eth0", "nodad"])
            try Self.mustRun(container, ["ip", "-6", "route", "add", "default", "via", "\(gateway)"])
        }
    }
}
