import Addressing
import Config

/// What ADD needs from subnet.env, as flannel's plugin reads it: a Network and a subnet of at
/// least one family (FLANNEL_NETWORK/FLANNEL_SUBNET, FLANNEL_IPV6_NETWORK/FLANNEL_IPV6_SUBNET),
/// the MTU and FLANNEL_IPMASQ.
public struct SubnetLease: Equatable, Sendable {
    public var network: IPv4Prefix?
    /// The lease as a network (FLANNEL_SUBNET=10.244.1.1/24 → 10.244.1.0/24), host-local's range.
    public var subnet: IPv4Prefix?
    public var ipv6Network: IPv6Prefix?
    /// FLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64 → fc00:0:0:1::/64, host-local's second range.
    public var ipv6Subnet: IPv6Prefix?
    public var mtu: Int
    public var ipMasq: Bool

    public init(
        network: IPv4Prefix?,
        subnet: IPv4Prefix?,
        ipv6Network: IPv6Prefix? = nil,
        ipv6Subnet: IPv6Prefix? = nil,
        mtu: Int,
        ipMasq: Bool
    ) {
        self.network = network
        self.subnet = subnet
        self.ipv6Network = ipv6Network
        self.ipv6Subnet = ipv6Subnet
        self.mtu = mtu
        self.ipMasq = ipMasq
    }

    /// Checks a parsed file as flannel's plugin does: either family satisfies each pair of names.
    public init(_ env: SubnetEnv, path: String) throws(CNIError) {
        var missing: [String] = []
        if env.network == nil && env.ipv6Network == nil { missing += ["FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK"] }
        if env.subnet == nil && env.ipv6Subnet == nil { missing += ["FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"] }
        if env.mtu == nil { missing.append("FLANNEL_MTU") }
        if env.ipMasq == nil { missing.append("FLANNEL_IPMASQ") }
        guard missing.isEmpty, let mtu = env.mtu, let ipMasq = env.ipMasq else {
            throw CNIError(
                .internal,
                "loadFlannelSubnetEnv failed: \(path) is missing \(missing.joined(separator: ", "))",
                details: "weftd writes all four once it holds a lease; check that it runs with --subnet-file \(path)"
            )
        }
        self.init(
            network: env.network,
            subnet: env.subnet,
            ipv6Network: env.ipv6Network,
            ipv6Subnet: env.ipv6Subnet,
            mtu: mtu,
            ipMasq: ipMasq
        )
    }

    /// Reads `path`. The messages start as flannel's do ("loadFlannelSubnetEnv failed: open
    /// /run/flannel/subnet.env: no such file or directory"), which is what operators search for.
    public static func load(path: String) throws(CNIError) -> SubnetLease {
        let env: SubnetEnv?
        do {
            env = try SubnetEnv.read(path: path)
        } catch {
            throw CNIError(.internal, "loadFlannelSubnetEnv failed: \(error)")
        }
        guard let env else {
            throw CNIError(
                .internal,
                "loadFlannelSubnetEnv failed: open \(path): no such file or directory",
                details:
                    "weftd writes it once it holds a lease: start weftd on this host, or point subnetFile at the file it writes"
            )
        }
        return try SubnetLease(env, path: path)
    }
}
