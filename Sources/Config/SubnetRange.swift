import Addressing

/// The subnets a lease may take: SubnetMin to SubnetMax in SubnetLen steps, both ends included.
/// Iterated lazily: a /8 Network with /30 subnets has four million candidates.
public struct SubnetRange: Sequence, Equatable, Sendable {
    public let first: IPv4Prefix
    public let last: IPv4Prefix

    public init(first: IPv4Prefix, last: IPv4Prefix) {
        precondition(first.length == last.length, "subnet range ends differ in length")
        self.first = first
        self.last = last
    }

    public var length: Int { first.length }

    public var count: Int {
        last.network < first.network ? 0 : Int((last.network.value - first.network.value) >> UInt32(32 - length)) + 1
    }

    /// flannel's isSubnetConfigCompat: the right length and between the ends.
    public func contains(_ subnet: IPv4Prefix) -> Bool {
        subnet.length == length && subnet.network >= first.network && subnet.network <= last.network
    }

    public struct Iterator: IteratorProtocol, Sendable {
        // 64-bit so stepping past 255.255.255.x ends the walk instead of wrapping to 0.0.0.0.
        var cursor: UInt64
        let end: UInt64
        let step: UInt64
        let length: Int

        public mutating func next() -> IPv4Prefix? {
            guard cursor <= end else { return nil }
            defer { cursor += step }
            return IPv4Prefix(IPv4Address(UInt32(cursor)), length: length)
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(
            cursor: UInt64(first.network.value),
            end: UInt64(last.network.value),
            step: first.size,
            length: length
        )
    }

    public var underestimatedCount: Int { count }
}

extension NetworkConfig {
    /// Number of addresses in one lease.
    public var subnetSize: UInt32 { ipv4.subnetSize }

    public var subnets: SubnetRange {
        SubnetRange(
            first: IPv4Prefix(subnetMin, length: subnetLength),
            last: IPv4Prefix(subnetMax, length: subnetLength)
        )
    }

    /// Whether a lease (e.g. one found in etcd for our PublicIP, or the previous FLANNEL_SUBNET)
    /// may be kept under this config.
    public func fits(_ subnet: IPv4Prefix) -> Bool { ipv4.fits(subnet) }

    /// flannel's isSubnetConfigCompat and isIPv6SubnetConfigCompat together: both halves of a
    /// lease fit, and it has an IPv6 subnet exactly when EnableIPv6 is true, so a lease taken
    /// before IPv6 was switched on (or off) is given up and taken again with the right halves.
    public func fits(_ key: LeaseKey) -> Bool {
        guard fits(key.subnet) else { return false }
        guard let ipv6 else { return key.ipv6Subnet == nil }
        return key.ipv6Subnet.map(ipv6.fits) ?? false
    }

    /// Why `subnet` cannot be a lease under this config, for a message; nil when it `fits`.
    public func misfit(_ subnet: IPv4Prefix) -> String? {
        if !network.contains(subnet) { return "\(subnet) lies outside the Network \(network)" }
        if subnet.length != subnetLength { return "\(subnet) is not a /\(subnetLength) (the SubnetLen)" }
        if subnet.network < subnetMin { return "\(subnet) lies below SubnetMin \(subnetMin)" }
        if subnet.network > subnetMax { return "\(subnet) lies above SubnetMax \(subnetMax)" }
        return nil
    }
}
