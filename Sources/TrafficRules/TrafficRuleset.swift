import Addressing

/// The nftables rules weftd keeps for one lease: flanneld's masquerade rules (--ip-masq) and its
/// forward-accept rules (--iptables-forward-rules), in a table of Weft's own, `table ip weft`.
///
/// postrouting (N = the Network, P = this host's lease subnet), first match wins:
///   meta mark & 0x4000 == 0x4000  return      kube-proxy's masquerade mark: it masquerades those itself
///   saddr N  daddr N              return      overlay → overlay keeps its real source, wherever it is routed
///   saddr !N daddr P              return      the host talking to its own containers
///   saddr N  daddr !224.0.0.0/4   masquerade  a container leaving the overlay takes the host's address
///   saddr !N daddr N              masquerade  the host talking to a remote subnet: the reply must come
///                                             back through the overlay, so the source must be in N
/// flanneld returns only P → N and N → P, so a packet routed through this host from one remote subnet
/// to another is masqueraded there; here no overlay → overlay packet ever is (the seeds' nginx-log
/// check: a container sees its peers' real addresses). flanneld's nftables mode also returns
/// `saddr != P daddr N`; its iptables mode (`! -s N -d P`) is the one followed here.
///
/// forward: saddr N accept; daddr N accept — so a FORWARD policy of drop (Docker's) spares the overlay.
///
/// input (`PortFilter`, udp and vxlan): the backend's UDP port open to the peers' PublicIPs only.
///
/// A dual-stack lease (`ipv6`) gets the same postrouting and forward chains for its IPv6Network and
/// IPv6 subnet in `table ip6 weft`, as flanneld keeps its v6 rules beside the v4 ones (multicast
/// there is ff00::/8), and there the port filter's IPv6 side (`PortFilter.ipv6Peers`) when the
/// backend listens over the IPv6 underlay; both tables are applied in one transaction.
public struct TrafficRuleset: Equatable, Sendable {
    public static let family = "ip"
    public static let ipv6Family = "ip6"
    public static let table = "weft"
    /// `table ip weft`, as nft names it in commands and messages.
    public static var tableSpecifier: String { tableSpecifier(family) }
    /// `table ip6 weft`.
    public static var ipv6TableSpecifier: String { tableSpecifier(ipv6Family) }

    static func tableSpecifier(_ family: String) -> String { "table \(family) \(table)" }

    /// The IPv6Network and this host's IPv6 subnet of a dual-stack lease.
    public struct IPv6Networks: Equatable, Sendable {
        public var network: IPv6Prefix
        public var subnet: IPv6Prefix

        public init(network: IPv6Prefix, subnet: IPv6Prefix) {
            self.network = network
            self.subnet = subnet
        }
    }

    /// The Network and this host's subnet; nil (both) on an IPv6-only network, whose `table ip
    /// weft` then has no postrouting or forward chain.
    public var network: IPv4Prefix?
    public var subnet: IPv4Prefix?
    /// --ip-masq: the postrouting chain.
    public var masquerade: Bool
    /// --iptables-forward-rules: the forward chain.
    public var forwardAccept: Bool
    /// MASQUERADE with fully-random port mapping (off with --ip-masq-fully-random-disable).
    public var fullyRandom: Bool
    /// --port-filter: the input chain, its set and its counter; nil without one.
    public var portFilter: PortFilter?
    /// A dual-stack lease's IPv6 side: `table ip6 weft`; nil for an IPv4-only lease.
    public var ipv6: IPv6Networks?

    public init(
        network: IPv4Prefix?,
        subnet: IPv4Prefix?,
        masquerade: Bool,
        forwardAccept: Bool,
        fullyRandom: Bool = true,
        portFilter: PortFilter? = nil,
        ipv6: IPv6Networks? = nil
    ) {
        self.network = network
        self.subnet = subnet
        self.masquerade = masquerade
        self.forwardAccept = forwardAccept
        self.fullyRandom = fullyRandom
        self.portFilter = portFilter
        self.ipv6 = ipv6
    }

    /// True when no chain is asked for: weftd then keeps no table.
    public var isEmpty: Bool { !masquerade && !forwardAccept && portFilter == nil }

    /// Whether `other` is this ruleset with another set of peers: then the set's elements are
    /// changed in place, and the chains and the counter stay as they are.
    public func differsOnlyInPeers(from other: TrafficRuleset) -> Bool {
        guard let filter = portFilter, let otherFilter = other.portFilter,
            filter.peers != otherFilter.peers || filter.ipv6Peers != otherFilter.ipv6Peers,
            (filter.ipv6Peers == nil) == (otherFilter.ipv6Peers == nil)
        else { return false }
        var same = other
        same.portFilter?.peers = filter.peers
        same.portFilter?.ipv6Peers = filter.ipv6Peers
        return same == self
    }

    /// The chains, written as `nft list table` prints them (nft 1.0.x), so a listing of a table
    /// nobody touched compares equal line for line.
    public var chains: [NFTChain] {
        var chains: [NFTChain] = []
        if let network, let subnet { chains = overlayChains(network: network, subnet: subnet) }
        if let portFilter { chains.append(portFilter.chain) }
        return chains
    }

    /// The chains of `table ip6 weft`: empty for an IPv4-only lease with no IPv6 port filter, or
    /// with no flag asking for one.
    public var ipv6Chains: [NFTChain] {
        var chains = ipv6.map { overlayChains(network: $0.network, subnet: $0.subnet) } ?? []
        if let chain = portFilter?.ipv6Chain { chains.append(chain) }
        return chains
    }

    /// postrouting and forward for one family's Network and subnet, as the flags ask.
    private func overlayChains<Prefix: IPPrefix>(network: Prefix, subnet: Prefix) -> [NFTChain] {
        let ip = Prefix.Address.bitWidth == 32 ? Self.family : Self.ipv6Family
        let multicast = Prefix.Address.bitWidth == 32 ? "224.0.0.0/4" : "ff00::/8"
        var chains: [NFTChain] = []
        let n = "\(network)"
        let p = "\(subnet)"
        if masquerade {
            let masquerade = fullyRandom ? "masquerade fully-random" : "masquerade"
            chains.append(
                NFTChain(
                    name: "postrouting",
                    lines: [
                        "type nat hook postrouting priority srcnat; policy accept;",
                        "meta mark & 0x00004000 == 0x00004000 return",
                        "\(ip) saddr \(n) \(ip) daddr \(n) return",
                        "\(ip) saddr != \(n) \(ip) daddr \(p) return",
                        "\(ip) saddr \(n) \(ip) daddr != \(multicast) \(masquerade)",
                        "\(ip) saddr != \(n) \(ip) daddr \(n) \(masquerade)",
                    ]
                )
            )
        }
        if forwardAccept {
            chains.append(
                NFTChain(
                    name: "forward",
                    lines: [
                        "type filter hook forward priority filter; policy accept;",
                        "\(ip) saddr \(n) accept",
                        "\(ip) daddr \(n) accept",
                    ]
                )
            )
        }
        return chains
    }

    /// The named sets (the port filter's peers).
    public var sets: [NFTSet] { portFilter.map { [$0.set] } ?? [] }

    /// The named counters (the port filter's drops); their values are the kernel's, never compared.
    public var counters: [String] { portFilter == nil ? [] : [PortFilter.counterName] }

    /// The named sets of `table ip6 weft` (the port filter's IPv6 peers).
    public var ipv6Sets: [NFTSet] { portFilter?.ipv6Set.map { [$0] } ?? [] }

    /// The named counters of `table ip6 weft`.
    public var ipv6Counters: [String] { portFilter?.ipv6Peers == nil ? [] : [PortFilter.counterName] }

    /// The table block, as `nft list table ip weft` prints it (but for a set's elements, which nft
    /// wraps two to a line and this writes on one).
    public var text: String {
        Self.text(Self.family, chains: chains, sets: sets, counters: counters)
    }

    /// `table ip6 weft` as `nft list table ip6 weft` prints it; nil when no such table is wanted.
    public var ipv6Text: String? {
        let chains = ipv6Chains
        return chains.isEmpty ? nil : Self.text(Self.ipv6Family, chains: chains, sets: ipv6Sets, counters: ipv6Counters)
    }

    private static func text(_ family: String, chains: [NFTChain], sets: [NFTSet], counters: [String]) -> String {
        var blocks: [String] = counters.map { "\tcounter \($0) {\n\t\tpackets 0 bytes 0\n\t}\n" }
        for set in sets {
            var block = "\tset \(set.name) {\n"
            for line in set.lines { block += "\t\t\(line)\n" }
            if !set.elements.isEmpty { block += "\t\telements = { \(set.elements.joined(separator: ", ")) }\n" }
            blocks.append(block + "\t}\n")
        }
        var text = "\(tableSpecifier(family)) {\n" + blocks.joined(separator: "\n")
        for (index, chain) in chains.enumerated() {
            if index > 0 || !blocks.isEmpty { text += "\n" }
            text += "\tchain \(chain.name) {\n"
            for line in chain.lines { text += "\t\t\(line)\n" }
            text += "\t}\n"
        }
        return text + "}\n"
    }

    /// One `nft -f -` transaction that leaves exactly this table whatever was there: the `add`
    /// makes the `delete` valid when the table is missing, and nft applies all three or none.
    /// With `ipv6`, `table ip6 weft` is replaced in the same transaction.
    public var applyScript: String {
        var script = "add \(Self.tableSpecifier)\ndelete \(Self.tableSpecifier)\n" + text
        if let ipv6Text { script += Self.removeScript(Self.ipv6Family) + ipv6Text }
        return script
    }

    /// One transaction that removes `table ip weft` if it exists and succeeds if it does not.
    public static var removeScript: String { removeScript(family) }

    /// The same for `table <family> weft`.
    public static func removeScript(_ family: String) -> String {
        "add \(tableSpecifier(family))\ndelete \(tableSpecifier(family))\n"
    }
}

/// One chain of the table: its name and its lines (the `type … hook …` header, then each rule),
/// trimmed, as nft prints them.
public struct NFTChain: Equatable, Sendable {
    public var name: String
    public var lines: [String]

    public init(name: String, lines: [String]) {
        self.name = name
        self.lines = lines
    }
}
