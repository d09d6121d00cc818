import Addressing
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

/// The port filter's IPv6 side (kernel vxlan's flannel-v6.<VNI> on the same port over the IPv6
/// underlay): its set, chain and counter in `table ip6 weft` beside the masquerade rules, and the
/// peers of both families changed in one transaction.
@Suite struct PortFilterIPv6Tests {
    @Test func rendersTheIPv6SetAndChainBesideTheMasqueradeRules() {
        let bare = Rulesets.dualStackPortFiltered(masquerade: false)
        // nft 1.0.6 reads this script and lists the table the same way, but for the elements,
        // which it writes one to a line.
        #expect(
            bare.ipv6Text == """
                table ip6 weft {
                \tcounter port-filter-dropped {
                \t\tpackets 0 bytes 0
                \t}

                \tset peers {
                \t\ttype ipv6_addr
                \t\telements = { 2001:db8::2, 2001:db8::9, 2001:db8::a }
                \t}

                \tchain input {
                \t\ttype filter hook input priority filter; policy accept;
                \t\tudp dport 8472 ip6 saddr != @peers counter name "port-filter-dropped" drop
                \t}
                }

                """
        )
        // With --ip-masq the table holds the masquerade chain too, unchanged, and the filter after it.
        let ruleset = Rulesets.dualStackPortFiltered()
        #expect(ruleset.ipv6Chains == Rulesets.dualStack(forward: false).ipv6Chains + bare.ipv6Chains)
        #expect(ruleset.ipv6Sets == bare.ipv6Sets && ruleset.ipv6Sets[0].lines == ["type ipv6_addr"])
        #expect(ruleset.ipv6Counters == ["port-filter-dropped"])
        // table ip weft is the IPv4 filter's alone.
        #expect(ruleset.sets == [PortFilter(port: 8472, peers: Rulesets.peers).set])
        #expect(ruleset.chains.map(\.name) == ["postrouting", "input"])
        #expect(ruleset.applyScript.contains("add table ip6 weft\ndelete table ip6 weft\n" + ruleset.ipv6Text!))

        // Without an IPv6 side there is no ip6 table.
        var ipv4Only = bare
        ipv4Only.portFilter?.ipv6Peers = nil
        #expect(ipv4Only.ipv6Text == nil && ipv4Only.ipv6Sets.isEmpty && ipv4Only.ipv6Counters.isEmpty)
        // No IPv6 peer yet: an empty set, which drops every sender over the IPv6 underlay.
        let lonely = Rulesets.dualStackPortFiltered(masquerade: false, ipv6Peers: [])
        #expect(lonely.ipv6Sets == [NFTSet(name: "peers", lines: ["type ipv6_addr"], elements: [])])
        #expect(!lonely.ipv6Text!.contains("elements"))
    }

    @Test func aChangeOfEitherFamilysPeersIsAppliedInPlaceInOneTransaction() {
        let base = Rulesets.dualStackPortFiltered()
        var joined = base
        joined.portFilter!.ipv6Peers!.insert(IPv6Address("2001:db8::3")!)
        #expect(joined.differsOnlyInPeers(from: base), "an IPv6 peer alone")
        joined.portFilter!.peers.insert(IPv4Address(198, 18, 0, 3))
        #expect(joined.differsOnlyInPeers(from: base))
        var noIPv6Side = base
        noIPv6Side.portFilter!.ipv6Peers = nil
        #expect(!noIPv6Side.differsOnlyInPeers(from: base) && !base.differsOnlyInPeers(from: noIPv6Side), "a new chain")
        var emptied = base
        emptied.portFilter!.ipv6Peers = []
        #expect(emptied.differsOnlyInPeers(from: base), "an empty set is a set")

        var left = Rulesets.ipv6Peers
        left.remove(IPv6Address("2001:db8::9")!)
        left.insert(IPv6Address("2001:db8::1")!)
        #expect(
            joined.portFilter!.elementScript(from: Rulesets.peers, ipv6: left) == """
                add element ip weft peers { 198.18.0.3 }
                add element ip6 weft peers { 2001:db8::3, 2001:db8::9 }
                delete element ip6 weft peers { 2001:db8::1 }

                """
        )
        #expect(base.portFilter!.elementScript(from: Rulesets.peers, ipv6: Rulesets.ipv6Peers) == nil)
        #expect(
            base.portFilter!.elementScript(from: Rulesets.peers)
                == "add element ip6 weft peers { 2001:db8::2, 2001:db8::9, 2001:db8::a }\n",
            "an empty set before"
        )
        #expect(
            Rulesets.portFiltered().portFilter!.elementScript(from: Rulesets.peers, ipv6: left) == nil,
            "no IPv6 side, no ip6 elements"
        )
    }

    /// nft's listing wraps IPv6 elements one to a line; the order and the counter's values are not differences.
    @Test func aListingOfTheIPv6TableComparesItsSetAsASet() {
        let wanted = Rulesets.dualStackPortFiltered(masquerade: false)
        let listed = """
            table ip6 weft {
            \tcounter port-filter-dropped {
            \t\tpackets 3 bytes 210
            \t}

            \tset peers {
            \t\ttype ipv6_addr
            \t\telements = { 2001:db8::2,
            \t\t\t     2001:db8::9,
            \t\t\t     2001:db8::a }
            \t}

            \tchain input {
            \t\ttype filter hook input priority filter; policy accept;
            \t\tudp dport 8472 ip6 saddr != @peers counter name "port-filter-dropped" drop
            \t}
            }
            """
        func differences(_ text: String) -> [String] {
            NFTListing(parsing: text).differences(
                from: wanted.ipv6Chains,
                sets: wanted.ipv6Sets,
                counters: wanted.ipv6Counters
            )
        }
        #expect(differences(listed).isEmpty)
        #expect(
            differences(listed.replacingOccurrences(of: "2001:db8::9,", with: "2001:db8::66,"))
                == ["missing in set peers: 2001:db8::9", "unexpected in set peers: 2001:db8::66"]
        )
    }
}
