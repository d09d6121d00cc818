import Addressing

/// The IPv6 half of flannel's network config (IPv6Network, IPv6SubnetLen, IPv6SubnetMin,
/// IPv6SubnetMax) with the defaults and checks CheckNetworkConfig applies when EnableIPv6 is
/// true: the IPv4 rules scaled to 128 bits, a /64 per host by default, and at least four subnets
/// of at least four addresses, so /124 is the smallest useful IPv6Network.
public struct IPv6Allocation: Equatable, Sendable {
    /// The whole IPv6 overlay, host bits masked off.
    public let network: IPv6Prefix
    /// Prefix length of each host's IPv6 lease.
    public let subnetLength: Int
    /// First address of the lowest and of the highest IPv6 subnet a lease may take (inclusive).
    public let subnetMin: IPv6Address
    public let subnetMax: IPv6Address

    /// Applies flannel's defaults and, for `.allocation`, its checks. nil, 0 (IPv6SubnetLen) and
    /// :: (IPv6SubnetMin/Max) all mean "unset", as in flannel. For `.podCIDRs` the subnet fields
    /// take the defaults when allocation would refuse them, as the IPv4 ones do.
    public init(
        network: IPv6Prefix,
        subnetLength: Int? = nil,
        subnetMin: IPv6Address? = nil,
        subnetMax: IPv6Address? = nil,
        checks: NetworkConfig.Checks = .allocation
    ) throws(ConfigError) {
        func refuse(_ field: String, _ problem: String) -> ConfigError {
            ConfigError(source: "config", field: field, problem: problem)
        }
        self.network = network
        if checks == .podCIDRs {
            let defaults = Self.defaultSubnets(of: network)
            let given = try? IPv6Allocation(
                network: network,
                subnetLength: subnetLength,
                subnetMin: subnetMin,
                subnetMax: subnetMax
            )
            self.subnetLength = given?.subnetLength ?? defaults.length
            self.subnetMin = given?.subnetMin ?? defaults.min
            self.subnetMax = given?.subnetMax ?? defaults.max
            return
        }
        let networkText = FlannelIPv6Text.prefix(network)
        let example = "\"IPv6Network\": \"fc00::/48\""
        guard network.length > 0 else {
            throw refuse(
                "IPv6Network",
                "IPv6Network \(networkText) covers every address; use a private range, e.g. \(example)"
            )
        }
        guard network.length <= 124 else {
            throw refuse(
                "IPv6Network",
                "IPv6Network \(networkText) is too small (the minimum useful prefix is /124); use an IPv6Network of /124 or shorter, e.g. \(example)"
            )
        }
        let shortest = network.length + 2
        let lengthFix =
            "use an IPv6SubnetLen between \(shortest) and 126 (e.g. \"IPv6SubnetLen\": \(max(64, shortest)))"
        let length: Int
        if let given = subnetLength, given != 0 {
            // Each host needs room for a tunnel address and a bridge address.
            guard given <= 126 else {
                throw refuse("IPv6SubnetLen", "IPv6SubnetLen \(given) is larger than 126; \(lengthFix)")
            }
            guard given >= shortest else {
                throw refuse(
                    "IPv6SubnetLen",
                    "IPv6SubnetLen \(given) leaves IPv6Network \(networkText) fewer than four subnets; \(lengthFix)"
                )
            }
            length = given
        } else {
            length = Self.defaultSubnets(of: network).length
        }

        let defaults = Self.bounds(of: network, length: length)
        func bound(
            _ field: String,
            _ given: IPv6Address?,
            default fallback: IPv6Address
        ) throws(ConfigError) -> IPv6Address {
            guard let given, given != .any else { return fallback }
            let shown = FlannelIPv6Text.address(given)
            guard network.contains(given) else {
                throw refuse(
                    field,
                    "\(field) \(shown) is not in the range of the IPv6Network \(networkText); use an address inside it, e.g. \"\(field)\": \"\(FlannelIPv6Text.address(fallback))\""
                )
            }
            let aligned = IPv6Prefix(given, length: length).network
            guard aligned == given else {
                throw refuse(
                    field,
                    "\(field) \(shown) is not on an IPv6SubnetLen boundary (/\(length)); use e.g. \"\(field)\": \"\(FlannelIPv6Text.address(aligned))\""
                )
            }
            return given
        }
        let lowest = try bound("IPv6SubnetMin", subnetMin, default: defaults.min)
        let highest = try bound("IPv6SubnetMax", subnetMax, default: defaults.max)
        // flannel does not check this; it would only fail later with "out of subnets".
        guard lowest <= highest else {
            throw refuse(
                "IPv6SubnetMin",
                "IPv6SubnetMin \(FlannelIPv6Text.address(lowest)) is above IPv6SubnetMax \(FlannelIPv6Text.address(highest)); swap them or widen the range"
            )
        }
        self.subnetLength = length
        self.subnetMin = lowest
        self.subnetMax = highest
    }

    /// flannel's defaults: IPv6SubnetLen 64 for an IPv6Network of /62 or shorter, else two bits
    /// more (at most /128); IPv6SubnetMin the second subnet, IPv6SubnetMax the last.
    static func defaultSubnets(of network: IPv6Prefix) -> (length: Int, min: IPv6Address, max: IPv6Address) {
        let length = network.length <= 62 ? 64 : min(network.length + 2, 128)
        let (low, high) = bounds(of: network, length: length)
        return (length, low, high)
    }

    /// The second and the last subnet of `length` in `network`: the first is skipped because
    /// its network address would collide with the IPv6Network's own.
    static func bounds(of network: IPv6Prefix, length: Int) -> (min: IPv6Address, max: IPv6Address) {
        let size = UInt128(1) << UInt128(128 - length)
        return (IPv6Address(network.network.value &+ size), IPv6Address(network.last.value &- (size - 1)))
    }

    /// Number of addresses in one IPv6 lease.
    public var subnetSize: UInt128 { UInt128(1) << UInt128(128 - subnetLength) }

    /// Whether an IPv6 lease (one found in etcd, or the previous FLANNEL_IPV6_SUBNET) may be kept
    /// under this config: flannel's isSubnetConfigCompat for the IPv6 half.
    public func fits(_ subnet: IPv6Prefix) -> Bool {
        subnet.length == subnetLength && subnet.network >= subnetMin && subnet.network <= subnetMax
    }
}
