import Addressing

/// One network interface as the host reports it (HostNetwork reads these).
public struct HostInterface: Equatable, Sendable {
    public var name: String
    public var index: Int
    public var mtu: Int
    /// IPv4 addresses in the kernel's order (primary first).
    public var addresses: [IPv4Address]
    public var isUp: Bool
    public var isLoopback: Bool
    /// IPv6 addresses in the kernel's order.
    public var ipv6Addresses: [IPv6Address]

    public init(
        name: String,
        index: Int,
        mtu: Int,
        addresses: [IPv4Address],
        isUp: Bool = true,
        isLoopback: Bool = false,
        ipv6Addresses: [IPv6Address] = []
    ) {
        self.name = name
        self.index = index
        self.mtu = mtu
        self.addresses = addresses
        self.isUp = isUp
        self.isLoopback = isLoopback
        self.ipv6Addresses = ipv6Addresses
    }

    /// flanneld takes the first usable address, global before link-local.
    var preferredAddress: IPv4Address? {
        let linkLocal = IPv4Prefix(IPv4Address(169, 254, 0, 0), length: 16)
        return addresses.first { !linkLocal.contains($0) } ?? addresses.first
    }

    /// flanneld's GetInterfaceIP6Addrs: global unicast before link-local (fe80::/10); loopback,
    /// multicast and the unspecified address are never used.
    var preferredIPv6Address: IPv6Address? {
        let linkLocal = IPv6Prefix(IPv6Address(0xfe80 << 112), length: 10)
        let usable = ipv6Addresses.filter { Self.isUnicast($0) }
        return usable.first { !linkLocal.contains($0) } ?? usable.first
    }

    static func isUnicast(_ address: IPv6Address) -> Bool {
        let multicast = IPv6Prefix(IPv6Address(0xff << 120), length: 8)
        return address != .any && address != IPv6Address(1) && !multicast.contains(address)
    }
}
