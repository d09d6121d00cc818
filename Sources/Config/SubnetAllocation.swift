import Addressing

/// One family's subnet fields of flannel's network config — Network, SubnetLen, SubnetMin,
/// SubnetMax for IPv4; IPv6Network, IPv6SubnetLen, IPv6SubnetMin, IPv6SubnetMax for IPv6 — with
/// the defaults and checks of CheckNetworkConfig, which are the IPv4 rules scaled to the
/// family's width: at least four subnets of at least four addresses each.
public struct SubnetAllocation<Prefix: AllocatablePrefix>: Equatable, Sendable {
    public typealias Address = Prefix.Address

    /// The whole overlay, host bits masked off ("10.1.2.3/16" is 10.1.0.0/16).
    public let network: Prefix
    /// Prefix length of each host's lease.
    public let subnetLength: Int
    /// First address of the lowest and of the highest subnet a lease may take (both inclusive).
    public let subnetMin: Address
    public let subnetMax: Address

    /// Applies flannel's defaults and, for `.allocation`, its checks. nil, 0 (SubnetLen) and the
    /// unspecified address (SubnetMin/Max) all mean "unset", as in flannel, where they are Go zero
    /// values. For `.podCIDRs` the subnet fields take the defaults when allocation would refuse them.
    public init(
        network: Prefix,
        subnetLength: Int? = nil,
        subnetMin: Address? = nil,
        subnetMax: Address? = nil,
        checks: NetworkConfig.Checks = .allocation
    ) throws(ConfigError) {
        func refuse(_ field: String, _ problem: String) -> ConfigError {
            ConfigError(source: "config", field: field, problem: problem)
        }
        self.network = network
        if checks == .podCIDRs {
            let defaults = Self.defaultSubnets(of: network)
            let given = try? Self(
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
        let (family, a) = (Prefix.fieldPrefix, Prefix.article)
        let networkField = "\(family)Network"
        let lengthField = "\(family)SubnetLen"
        let networkText = network.flannelText
        let example = Prefix.exampleNetwork
        guard network.length > 0 else {
            throw refuse(
                networkField,
                "\(networkField) \(networkText) covers every address; use a private range, e.g. \(example)"
            )
        }
        // Four subnets of at least four addresses each.
        let smallest = Address.bitWidth - 4
        guard network.length <= smallest else {
            throw refuse(
                networkField,
                "\(networkField) \(networkText) is too small (the minimum useful prefix is /\(smallest)); use \(a) \(networkField) of /\(smallest) or shorter, e.g. \(example)"
            )
        }
        let shortest = network.length + 2
        // Each host needs room for a tunnel address and a bridge address.
        let longest = Address.bitWidth - 2
        let lengthFix =
            "use \(a) \(lengthField) between \(shortest) and \(longest) (e.g. \"\(lengthField)\": \(max(Prefix.defaultSubnetLength, shortest)))"
        let length: Int
        if let given = subnetLength, given != 0 {
            guard given <= longest else {
                throw refuse(lengthField, "\(lengthField) \(given) is larger than \(longest); \(lengthFix)")
            }
            guard given >= shortest else {
                throw refuse(
                    lengthField,
                    "\(lengthField) \(given) leaves \(networkField) \(networkText) fewer than four subnets; \(lengthFix)"
                )
            }
            length = given
        } else {
            length = Self.defaultSubnets(of: network).length
        }

        let defaults = Self.bounds(of: network, length: length)
        func bound(_ name: String, _ given: Address?, default fallback: Address) throws(ConfigError) -> Address {
            let field = "\(family)\(name)"
            guard let given, given != .any else { return fallback }
            let shown = Prefix.flannelText(given)
            guard network.contains(given) else {
                throw refuse(
                    field,
                    "\(field) \(shown) is not in the range of the \(networkField) \(networkText); use an address inside it, e.g. \"\(field)\": \"\(Prefix.flannelText(fallback))\""
                )
            }
            let aligned = Prefix(given, length: length).network
            guard aligned == given else {
                throw refuse(
                    field,
                    "\(field) \(shown) is not on \(a) \(lengthField) boundary (/\(length)); use e.g. \"\(field)\": \"\(Prefix.flannelText(aligned))\""
                )
            }
            return given
        }
        let lowest = try bound("SubnetMin", subnetMin, default: defaults.min)
        let highest = try bound("SubnetMax", subnetMax, default: defaults.max)
        // flannel does not check this; it would only fail later with "out of subnets".
        guard lowest <= highest else {
            throw refuse(
                "\(family)SubnetMin",
                "\(family)SubnetMin \(Prefix.flannelText(lowest)) is above \(family)SubnetMax \(Prefix.flannelText(highest)); swap them or widen the range"
            )
        }
        self.subnetLength = length
        self.subnetMin = lowest
        self.subnetMax = highest
    }

    /// flannel's defaults: SubnetLen 24 (IPv6: 64) for a Network of /22 (/62) or shorter, else
    /// two bits more (at most a single address); SubnetMin the second subnet, SubnetMax the last.
    static func defaultSubnets(of network: Prefix) -> (length: Int, min: Address, max: Address) {
        let usual = Prefix.defaultSubnetLength
        let length = network.length <= usual - 2 ? usual : min(network.length + 2, Address.bitWidth)
        let (low, high) = bounds(of: network, length: length)
        return (length, low, high)
    }

    /// The second and the last subnet of `length` in `network`: the first is skipped because
    /// its network address would collide with the Network's own.
    static func bounds(of network: Prefix, length: Int) -> (min: Address, max: Address) {
        let size = Address.Value(1) << Address.Value(Address.bitWidth - length)
        return (Address(network.network.value &+ size), Address(network.last.value &- (size - 1)))
    }

    /// Number of addresses in one lease.
    public var subnetSize: Address.Value { Address.Value(1) << Address.Value(Address.bitWidth - subnetLength) }

    /// Whether a lease (one found in the store for our PublicIP, or the previous subnet.env's)
    /// may be kept under this config: flannel's isSubnetConfigCompat.
    public func fits(_ subnet: Prefix) -> Bool {
        subnet.length == subnetLength && subnet.network >= subnetMin && subnet.network <= subnetMax
    }
}

public typealias IPv4Allocation = SubnetAllocation<IPv4Prefix>
public typealias IPv6Allocation = SubnetAllocation<IPv6Prefix>

/// A family's names in the config and in flannel's messages.
public protocol AllocatablePrefix: IPPrefix {
    /// What the family's field names start with: "" (Network, SubnetLen) or "IPv6".
    static var fieldPrefix: String { get }
    /// "a SubnetLen", "an IPv6SubnetLen".
    static var article: String { get }
    /// flannel's SubnetLen for a roomy Network: 24, or 64 for IPv6.
    static var defaultSubnetLength: Int { get }
    /// The Network field as an example for a message.
    static var exampleNetwork: String { get }
    /// The address as flanneld prints it.
    static func flannelText(_ address: Address) -> String
}

extension AllocatablePrefix {
    /// The prefix as flanneld prints it.
    var flannelText: String { "\(Self.flannelText(network))/\(length)" }
}

extension IPv4Prefix: AllocatablePrefix {
    public static var fieldPrefix: String { "" }
    public static var article: String { "a" }
    public static var defaultSubnetLength: Int { 24 }
    public static var exampleNetwork: String { "\"Network\": \"10.244.0.0/16\"" }
    public static func flannelText(_ address: IPv4Address) -> String { address.description }
}

extension IPv6Prefix: AllocatablePrefix {
    public static var fieldPrefix: String { "IPv6" }
    public static var article: String { "an" }
    public static var defaultSubnetLength: Int { 64 }
    public static var exampleNetwork: String { "\"IPv6Network\": \"fc00::/48\"" }
    public static func flannelText(_ address: IPv6Address) -> String { FlannelIPv6Text.address(address) }
}
