import Addressing

/// flannel's network configuration (the JSON at `<prefix>/config`, or net-conf.json in Kubernetes
/// mode), with flannel's defaults applied and, where leases are allocated from it, its validation
/// (CheckNetworkConfig) passed. Either family may be absent (EnableIPv4 false makes an IPv6-only
/// network), never both.
public struct NetworkConfig: Equatable, Sendable {
    /// What the config is checked for. flannel runs CheckNetworkConfig only where it allocates
    /// subnets itself (etcd); in Kubernetes mode each node's subnet is its podCIDR, SubnetLen,
    /// SubnetMin and SubnetMax are never used, and a net-conf.json that etcd mode would refuse for
    /// them (a /29 Network, SubnetLen 31) runs under flanneld, so it must run under weftd.
    public enum Checks: Sendable {
        /// etcd mode: leases are allocated from Network by SubnetLen between SubnetMin and SubnetMax.
        case allocation
        /// Kubernetes mode: the subnet fields are parsed for their types only. When allocation
        /// would refuse them, SubnetLen, SubnetMin and SubnetMax take flannel's defaults for the
        /// Network, which nothing allocates from.
        case podCIDRs
    }

    /// Network, SubnetLen, SubnetMin and SubnetMax; nil when EnableIPv4 is false.
    public let ipv4: IPv4Allocation?
    public let backend: BackendConfig
    /// Parsed for completeness; the masquerade rules decide what to do with it.
    public let enableNFTables: Bool
    /// The IPv6 overlay when EnableIPv6 is true, nil otherwise.
    public let ipv6: IPv6Allocation?

    /// The IPv4 overlay, host bits masked off ("10.1.2.3/16" is 10.1.0.0/16); nil when IPv6-only.
    public var network: IPv4Prefix? { ipv4?.network }
    /// Prefix length of each host's IPv4 lease.
    public var subnetLength: Int? { ipv4?.subnetLength }
    /// First address of the lowest and of the highest subnet a lease may take (both inclusive).
    public var subnetMin: IPv4Address? { ipv4?.subnetMin }
    public var subnetMax: IPv4Address? { ipv4?.subnetMax }

    /// True for an IPv6-only network (EnableIPv4 false).
    public var isIPv6Only: Bool { ipv4 == nil }

    /// Applies flannel's defaults and checks (IPv4Allocation) to the IPv4 fields.
    public init(
        network: IPv4Prefix,
        subnetLength: Int? = nil,
        subnetMin: IPv4Address? = nil,
        subnetMax: IPv4Address? = nil,
        backend: BackendConfig = .udp,
        enableNFTables: Bool = false,
        ipv6: IPv6Allocation? = nil,
        checks: Checks = .allocation
    ) throws(ConfigError) {
        ipv4 = try IPv4Allocation(
            network: network,
            subnetLength: subnetLength,
            subnetMin: subnetMin,
            subnetMax: subnetMax,
            checks: checks
        )
        self.backend = backend
        self.enableNFTables = enableNFTables
        self.ipv6 = ipv6
    }

    /// An IPv6-only network (EnableIPv4 false): IPv6Network and its subnet fields alone.
    public init(ipv6: IPv6Allocation, backend: BackendConfig = .udp, enableNFTables: Bool = false) {
        ipv4 = nil
        self.ipv6 = ipv6
        self.backend = backend
        self.enableNFTables = enableNFTables
    }

    public static func parse(
        _ text: String,
        checks: Checks = .allocation
    ) throws(ConfigError) -> NetworkConfig {
        try parse(Array(text.utf8), checks: checks)
    }

    /// Decodes the config JSON like Go's encoding/json into flannel's Config struct (member names
    /// case-insensitive, unknown members ignored, later duplicates win), then validates for `checks`.
    public static func parse(
        _ bytes: [UInt8],
        checks: Checks = .allocation
    ) throws(ConfigError) -> NetworkConfig {
        try validated(bytes, checks: checks)
    }

    /// The config as flannel accepts it: `ipv4` nil when EnableIPv4 is false, `ipv6` set when
    /// EnableIPv6 is true.
    static func validated(_ bytes: [UInt8], checks: Checks) throws(ConfigError) -> NetworkConfig {
        let document: JSONDocument
        do {
            document = try JSONDocument(bytes)
        } catch {
            throw ConfigError(
                source: "config",
                field: "JSON",
                problem: "\(error.summary); fix the JSON syntax (quotes, commas, braces)"
            )
        }
        let decoder = FieldDecoder(source: "config", document: document)
        let members: [JSONMember]
        switch document.root.kind {
        case .object(let found): members = found
        case .null: members = []
        default:
            throw decoder.error(
                "JSON",
                "the network config must be a JSON object, got \(document.root.kindName); use e.g. {\"Network\": \"10.244.0.0/16\", \"Backend\": {\"Type\": \"vxlan\"}}"
            )
        }

        let enableIPv4 =
            try members.decodeField("EnableIPv4") { (v) throws(ConfigError) in try decoder.bool("EnableIPv4", v) }
            ?? true
        let enableIPv6 =
            try members.decodeField("EnableIPv6") { (v) throws(ConfigError) in try decoder.bool("EnableIPv6", v) }
            ?? false
        let enableNFTables =
            try members.decodeField("EnableNFTables") { (v) throws(ConfigError) in try decoder.bool("EnableNFTables", v)
            } ?? false
        let network = try members.decodeField("Network") { (v) throws(ConfigError) -> IPv4Prefix in
            let example = "\"Network\": \"10.244.0.0/16\""
            let text = try decoder.string("Network", v, example: example)
            guard let prefix = IPv4Prefix(text) else {
                throw decoder.error(
                    "Network",
                    "Network \(ConfigError.show(text)) is not an IPv4 CIDR; use e.g. \(example)"
                )
            }
            return prefix
        }
        let subnetLength = try members.decodeField("SubnetLen") { (v) throws(ConfigError) -> Int in
            try decoder.prefixLength("SubnetLen", v, longest: 30, example: "\"SubnetLen\": 24")
        }
        let subnetMin = try members.decodeField("SubnetMin") { (v) throws(ConfigError) in
            try decoder.ipv4("SubnetMin", v, example: "\"SubnetMin\": \"10.244.1.0\"")
        }
        let subnetMax = try members.decodeField("SubnetMax") { (v) throws(ConfigError) in
            try decoder.ipv4("SubnetMax", v, example: "\"SubnetMax\": \"10.244.255.0\"")
        }
        // Go decodes the IPv6 fields whatever EnableIPv6 says, so a malformed one fails either way.
        let ipv6Network = try members.decodeField("IPv6Network") { (v) throws(ConfigError) in
            try decoder.ipv6Network("IPv6Network", v)
        }
        let ipv6SubnetLength = try members.decodeField("IPv6SubnetLen") { (v) throws(ConfigError) -> Int in
            try decoder.prefixLength("IPv6SubnetLen", v, longest: 126, example: "\"IPv6SubnetLen\": 64")
        }
        let ipv6SubnetMin = try members.decodeField("IPv6SubnetMin") { (v) throws(ConfigError) in
            try decoder.ipv6("IPv6SubnetMin", v, example: "\"IPv6SubnetMin\": \"fc00:0:0:1::\"")
        }
        let ipv6SubnetMax = try members.decodeField("IPv6SubnetMax") { (v) throws(ConfigError) in
            try decoder.ipv6("IPv6SubnetMax", v, example: "\"IPv6SubnetMax\": \"fc00:0:0:ffff::\"")
        }
        let backend = try BackendConfig.decode(members.lastMatch("Backend"), with: decoder)

        guard enableIPv4 || enableIPv6 else {
            throw decoder.error(
                "EnableIPv4",
                "EnableIPv4 and EnableIPv6 are both false, so the network carries nothing; remove \"EnableIPv4\": false or set \"EnableIPv6\": true"
            )
        }
        var ipv6: IPv6Allocation?
        if enableIPv6 {
            guard let ipv6Network else {
                throw decoder.error(
                    "IPv6Network",
                    "IPv6Network is missing but EnableIPv6 is true; add it, e.g. \"IPv6Network\": \"fc00::/48\", or set \"EnableIPv6\": false"
                )
            }
            guard let prefix = ipv6Network.prefix else {
                throw decoder.error(
                    "IPv6Network",
                    "IPv6Network \(ConfigError.show(ipv6Network.text)) is an IPv4 CIDR; use an IPv6 one, e.g. \"IPv6Network\": \"fc00::/48\""
                )
            }
            ipv6 = try IPv6Allocation(
                network: prefix,
                subnetLength: ipv6SubnetLength,
                subnetMin: ipv6SubnetMin,
                subnetMax: ipv6SubnetMax,
                checks: checks
            )
        }
        guard enableIPv4 else {
            // Checked above: EnableIPv6 is true, so the IPv6 half exists.
            guard let ipv6 else { preconditionFailure("an IPv6-only config without IPv6") }
            return NetworkConfig(ipv6: ipv6, backend: backend, enableNFTables: enableNFTables)
        }
        guard let network else {
            throw decoder.error("Network", "Network is missing; add it, e.g. \"Network\": \"10.244.0.0/16\"")
        }
        return try NetworkConfig(
            network: network,
            subnetLength: subnetLength,
            subnetMin: subnetMin,
            subnetMax: subnetMax,
            backend: backend,
            enableNFTables: enableNFTables,
            ipv6: ipv6,
            checks: checks
        )
    }
}

extension Array where Element == JSONMember {
    /// The last member with this name (any case), null included: flannel keeps Backend as a
    /// json.RawMessage, and a RawMessage takes whatever the last duplicate holds.
    func lastMatch(_ field: String) -> JSONValue? {
        last { $0.key.lowercasedASCII == field.lowercasedASCII }?.value
    }
}
