import Addressing
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

@Suite struct TrafficRulesetTests {
    @Test func rendersTheTableAsNftListsIt() {
        // What nft 1.0.6 printed for this table after `nft -f` of the same script.
        #expect(
            Rulesets.ipv4().text == """
                table ip weft {
                \tchain postrouting {
                \t\ttype nat hook postrouting priority srcnat; policy accept;
                \t\tmeta mark & 0x00004000 == 0x00004000 return
                \t\tip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return
                \t\tip saddr != 10.244.0.0/16 ip daddr 10.244.3.0/24 return
                \t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
                \t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random
                \t}

                \tchain forward {
                \t\ttype filter hook forward priority filter; policy accept;
                \t\tip saddr 10.244.0.0/16 accept
                \t\tip daddr 10.244.0.0/16 accept
                \t}
                }

                """
        )
    }

    @Test func eachFlagSelectsItsChain() {
        #expect(Rulesets.ipv4(forward: false).chains.map(\.name) == ["postrouting"])
        #expect(Rulesets.ipv4(masquerade: false).chains.map(\.name) == ["forward"])
        #expect(Rulesets.ipv4(masquerade: false, forward: false).isEmpty)
        #expect(Rulesets.ipv4(masquerade: false, forward: false).chains.isEmpty)
        let plain = Rulesets.ipv4(fullyRandom: false).chains[0].lines
        #expect(plain.filter { $0.hasSuffix(" masquerade") }.count == 2, "\(plain)")
        #expect(!plain.contains { $0.contains("fully-random") })
    }

    /// The rule set's meaning, evaluated first-match on sample packets, so a reordering that
    /// changes who is masqueraded fails here and not only in a namespace.
    @Test func overlayTrafficKeepsItsSourceAndLeavingTrafficIsMasqueraded() {
        let lines = Rulesets.ipv4().chains[0].lines.dropFirst()
        func verdict(_ source: String, _ destination: String, mark: UInt32 = 0) -> String {
            let s = IPv4Address(source)!
            let d = IPv4Address(destination)!
            for line in lines {
                if line.hasPrefix("meta mark") {
                    if mark & 0x4000 == 0x4000 { return "return" }
                    continue
                }
                if Self.matches(line, s, d) { return line.hasSuffix("return") ? "return" : "masquerade" }
            }
            return "accept"
        }
        #expect(
            verdict("10.244.3.2", "10.244.7.2") == "return",
            "container → remote container: real address (nginx log)"
        )
        #expect(verdict("10.244.7.2", "10.244.3.2") == "return", "remote container → local container")
        #expect(
            verdict("10.244.7.2", "10.244.9.2") == "return",
            "routed between two remote subnets: flanneld masquerades, Weft does not"
        )
        #expect(verdict("10.244.3.2", "198.18.0.200") == "masquerade", "container → outside the overlay")
        #expect(verdict("10.244.3.2", "8.8.8.8") == "masquerade")
        #expect(verdict("10.244.3.2", "224.0.0.251") == "accept", "multicast is never masqueraded")
        #expect(
            verdict("198.18.0.1", "10.244.7.2") == "masquerade",
            "host → remote subnet: replies come back through the overlay"
        )
        #expect(verdict("198.18.0.1", "10.244.3.2") == "return", "host → its own containers")
        #expect(verdict("198.18.0.1", "198.18.0.2") == "accept", "underlay traffic is not touched")
        #expect(verdict("10.244.3.2", "198.18.0.200", mark: 0x4000) == "return", "kube-proxy's mark")
    }

    /// `ip saddr [!=] A ip daddr [!=] B` (`ip6 …` for IPv6) matching, for the tests above and IPv6's.
    static func matches<Address: IPAddress>(_ line: String, _ source: Address, _ destination: Address) -> Bool {
        let keyword = Address.bitWidth == 32 ? "ip" : "ip6"
        let words = line.split(separator: " ").map(String.init)
        var index = 0
        var matched = true
        while index < words.count {
            guard words[index] == keyword, index + 2 < words.count else {
                index += 1
                continue
            }
            let field = words[index + 1]
            var negated = false
            var valueIndex = index + 2
            if words[valueIndex] == "!=" {
                negated = true
                valueIndex += 1
            }
            let prefix = Address.Prefix(words[valueIndex])!
            let address = field == "saddr" ? source : destination
            if prefix.contains(address) == negated { matched = false }
            index = valueIndex + 1
        }
        return matched
    }

    @Test func scriptsReplaceTheWholeTableInOneTransaction() {
        let script = Rulesets.ipv4().applyScript
        #expect(script.hasPrefix("add table ip weft\ndelete table ip weft\ntable ip weft {\n"))
        #expect(script.components(separatedBy: "table ip weft").count == 4, "one add, one delete, one definition")
        #expect(TrafficRuleset.removeScript == "add table ip weft\ndelete table ip weft\n")
    }

    @Test func aNewSubnetChangesOnlyTheOwnSubnetRule() {
        var moved = Rulesets.ipv4()
        moved.subnet = IPv4Prefix("10.244.9.0/24")!
        let before = Rulesets.ipv4().chains[0].lines
        let after = moved.chains[0].lines
        let changed = zip(before, after).filter { $0 != $1 }
        #expect(changed.count == 1)
        #expect(changed.first?.1 == "ip saddr != 10.244.0.0/16 ip daddr 10.244.9.0/24 return")
    }
}
