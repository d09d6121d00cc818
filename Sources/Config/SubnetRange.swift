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
    /// Number of addresses in one IPv4 lease; nil for an IPv6-only network.
    public var subnetSize: UInt32? { ipv4?.subnetSize }

    /// The IPv4 subnets a lease may take; nil for an IPv6-only network.
    public var subnets: SubnetRange? {
        ipv4.map {
            SubnetRange(
                first: IPv4Prefix($0.subnetMin, length: $0.subnetLength),
                last: IPv4Prefix($0.subnetMax, length: $0.subnetLength)
            )
        }
    }

    /// Whether an IPv4 lease (e.g. one found in etcd for our PublicIP, or the previous
    /// FLANNEL_SUBNET) may be kept under this config: never on an IPv6-only network.
    public func fits(_ subnet: IPv4Prefix) -> Bool { ipv4?.fits(subnet) ?? false }

    /// flannel's isSubnetConfigCompat and isIPv6SubnetConfigCompat together: both halves of a
    /// lease fit, and it has each half exactly when its family is enabled, so a lease taken
    /// before IPv6 was switched on (or off) is given up and taken again with the right halves.
    public func fits(_ key: LeaseKey) -> Bool {
        switch (ipv4, key.subnet) {
        case (nil, nil): break
        case (let ipv4?, let subnet?): guard ipv4.fits(subnet) else { return false }
        default: return false
        }
        guard let ipv6 else { return key.ipv6Subnet == nil }
        return key.ipv6Subnet.map(ipv6.fits) ?? false
    }

    /// Why `subnet` cannot be an IPv4 lease under this config, for a message; nil when it `fits`.
    public func misfit(_ subnet: IPv4Prefix) -> String? {
        guard let ipv4 else { return "\(subnet) is IPv4, but the network has no IPv4 (EnableIPv4 is false)" }
        let network = ipv4.network
        if !network.contains(subnet) { return "\(subnet) lies outside the Network \(network)" }
        if subnet.length != ipv4.subnetLength { return "\(subnet) is not a /\(ipv4.subnetLength) (the SubnetLen)" }
        if subnet.network < ipv4.subnetMin { return "\(subnet) lies below SubnetMin \(ipv4.subnetMin)" }
        if subnet.network > ipv4.subnetMax { return "\(subnet) lies above SubnetMax \(ipv4.subnetMax)" }
        return nil
    }
}
