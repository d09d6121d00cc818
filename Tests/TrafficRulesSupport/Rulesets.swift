import Addressing
import TrafficRules

/// The rulesets TrafficRulesTests render and compare and TrafficRulesRootTests install with the real
/// nft: one Network and subnet per family, and three peers for the port filter.
public enum Rulesets {
    public static let network = IPv4Prefix("10.244.0.0/16")!
    public static let subnet = IPv4Prefix("10.244.3.0/24")!
    public static let ipv6 = TrafficRuleset.IPv6Networks(
        network: IPv6Prefix("fc00::/48")!,
        subnet: IPv6Prefix("fc00:0:0:3::/64")!
    )
    public static let peers: Set<IPv4Address> = [
        IPv4Address(198, 18, 0, 2), IPv4Address(198, 18, 0, 10), IPv4Address(198, 18, 0, 9),
    ]
    /// The same peers' PublicIPv6.
    public static let ipv6Peers: Set<IPv6Address> = [
        IPv6Address("2001:db8::2")!, IPv6Address("2001:db8::a")!, IPv6Address("2001:db8::9")!,
    ]

    /// `table ip weft` alone.
    public static func ipv4(masquerade: Bool = true, forward: Bool = true, fullyRandom: Bool = true) -> TrafficRuleset {
        TrafficRuleset(
            network: network,
            subnet: subnet,
            masquerade: masquerade,
            forwardAccept: forward,
            fullyRandom: fullyRandom
        )
    }

    /// `table ip weft` and `table ip6 weft`.
    public static func dualStack(masquerade: Bool = true, forward: Bool = true) -> TrafficRuleset {
        var ruleset = ipv4(masquerade: masquerade, forward: forward)
        ruleset.ipv6 = ipv6
        return ruleset
    }

    /// The forward rules and the port filter letting `peers` reach `port`, no masquerade.
    public static func portFiltered(
        forward: Bool = true,
        peers: Set<IPv4Address> = peers,
        port: UInt16 = 8472
    ) -> TrafficRuleset {
        TrafficRuleset(
            network: network,
            subnet: subnet,
            masquerade: false,
            forwardAccept: forward,
            portFilter: PortFilter(port: port, peers: peers)
        )
    }

    /// A dual-stack lease masquerading, its port filter on both underlays: `table ip weft` and
    /// `table ip6 weft` each with the input chain, the set and the counter.
    public static func dualStackPortFiltered(
        masquerade: Bool = true,
        peers: Set<IPv4Address> = peers,
        ipv6Peers: Set<IPv6Address> = ipv6Peers,
        port: UInt16 = 8472
    ) -> TrafficRuleset {
        var ruleset = portFiltered(forward: false, peers: peers, port: port)
        ruleset.masquerade = masquerade
        ruleset.ipv6 = ipv6
        ruleset.portFilter?.ipv6Peers = ipv6Peers
        return ruleset
    }
}
