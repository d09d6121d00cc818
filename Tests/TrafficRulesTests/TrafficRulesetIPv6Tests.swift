import Addressing
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

@Suite struct TrafficRulesetIPv6Tests {
    @Test func rendersTableIP6AsNftListsIt() {
        // What nft 1.0.6 printed for this table after applying the same script.
        #expect(
            Rulesets.dualStack().ipv6Text == """
                table ip6 weft {
                \tchain postrouting {
                \t\ttype nat hook postrouting priority srcnat; policy accept;
                \t\tmeta mark & 0x00004000 == 0x00004000 return
                \t\tip6 saddr fc00::/48 ip6 daddr fc00::/48 return
                \t\tip6 saddr != fc00::/48 ip6 daddr fc00:0:0:3::/64 return
                \t\tip6 saddr fc00::/48 ip6 daddr != ff00::/8 masquerade fully-random
                \t\tip6 saddr != fc00::/48 ip6 daddr fc00::/48 masquerade fully-random
                \t}

                \tchain forward {
                \t\ttype filter hook forward priority filter; policy accept;
                \t\tip6 saddr fc00::/48 accept
                \t\tip6 daddr fc00::/48 accept
                \t}
                }

                """
        )
        #expect(Rulesets.dualStack().text == Rulesets.ipv4().text, "table ip weft is unchanged")
    }

    @Test func eachFlagSelectsItsChainAndNoneMeansNoTable() {
        #expect(Rulesets.dualStack(forward: false).ipv6Chains.map(\.name) == ["postrouting"])
        #expect(Rulesets.dualStack(masquerade: false).ipv6Chains.map(\.name) == ["forward"])
        #expect(Rulesets.dualStack(masquerade: false, forward: false).ipv6Text == nil)
        #expect(Rulesets.ipv4().ipv6Text == nil, "an IPv4-only lease has no ip6 table")
        #expect(!Rulesets.ipv4().applyScript.contains("ip6"))
    }

    /// An IPv6-only network's rules are all in `table ip6 weft`; `table ip weft` has no chain.
    @Test func anIPv6OnlyLeaseHasItsChainsInTableIP6Alone() {
        var ipv6Only = Rulesets.dualStack()
        ipv6Only.network = nil
        ipv6Only.subnet = nil
        #expect(ipv6Only.chains.isEmpty)
        #expect(ipv6Only.ipv6Text == Rulesets.dualStack().ipv6Text)
        #expect(!ipv6Only.text.contains("chain") && !ipv6Only.applyScript.contains("ip saddr"))
    }

    @Test func bothTablesAreReplacedInOneTransaction() {
        let script = Rulesets.dualStack().applyScript
        #expect(script.hasPrefix("add table ip weft\ndelete table ip weft\ntable ip weft {\n"))
        #expect(script.contains("}\nadd table ip6 weft\ndelete table ip6 weft\ntable ip6 weft {\n"))
        #expect(script.hasSuffix(Rulesets.dualStack().ipv6Text!))
    }

    /// flanneld's v6 rules' meaning, first match, on sample packets.
    @Test func overlayTrafficKeepsItsSourceAndLeavingTrafficIsMasqueraded() {
        let lines = Rulesets.dualStack().ipv6Chains[0].lines.dropFirst(2)
        func verdict(_ source: String, _ destination: String) -> String {
            for line in lines where TrafficRulesetTests.matches(line, IPv6Address(source)!, IPv6Address(destination)!) {
                return line.hasSuffix("return") ? "return" : "masquerade"
            }
            return "accept"
        }
        #expect(verdict("fc00:0:0:3::2", "fc00:0:0:7::2") == "return", "container → remote container")
        #expect(verdict("fc00:0:0:7::2", "fc00:0:0:3::2") == "return", "remote container → local container")
        #expect(verdict("fc00:0:0:3::2", "2001:db8::c8") == "masquerade", "container → outside the overlay")
        #expect(verdict("fc00:0:0:3::2", "ff02::fb") == "accept", "multicast is never masqueraded")
        #expect(verdict("2001:db8::1", "fc00:0:0:7::2") == "masquerade", "host → remote subnet")
        #expect(verdict("2001:db8::1", "fc00:0:0:3::2") == "return", "host → its own containers")
        #expect(verdict("2001:db8::1", "2001:db8::2") == "accept", "underlay traffic is not touched")
    }
}
