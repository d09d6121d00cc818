import Addressing
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

@Suite struct NFTListingTests {
    static let wanted = Rulesets.ipv4()

    @Test func anUntouchedListingHasNoDifferences() {
        let listing = NFTListing(parsing: Self.wanted.text)
        #expect(listing.chains == Self.wanted.chains)
        #expect(listing.otherLines.isEmpty)
        #expect(listing.differences(from: Self.wanted.chains).isEmpty)
        // Indentation and blank lines do not matter.
        let respaced = Self.wanted.text.replacingOccurrences(of: "\t", with: "    ") + "\n\n"
        #expect(NFTListing(parsing: respaced).differences(from: Self.wanted.chains).isEmpty)
    }

    @Test func namesAMissingRuleChainOrTable() {
        let masquerade = "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random"
        let withoutRule = Self.wanted.text.replacingOccurrences(of: "\t\t\(masquerade)\n", with: "")
        #expect(
            NFTListing(parsing: withoutRule).differences(from: Self.wanted.chains) == [
                "missing in postrouting: \(masquerade)"
            ]
        )

        let forwardOnly = Rulesets.ipv4(masquerade: false).text
        #expect(NFTListing(parsing: forwardOnly).differences(from: Self.wanted.chains) == ["missing chain postrouting"])
        #expect(
            NFTListing(parsing: "").differences(from: Self.wanted.chains) == [
                "missing chain postrouting", "missing chain forward",
            ]
        )
    }

    @Test func namesAnUnexpectedCopyExtraRuleChainOrSet() {
        let accept = "ip saddr 10.244.0.0/16 accept"
        let doubled = Self.wanted.text.replacingOccurrences(
            of: "\t\t\(accept)\n",
            with: "\t\t\(accept)\n\t\t\(accept)\n"
        )
        #expect(
            NFTListing(parsing: doubled).differences(from: Self.wanted.chains) == ["unexpected in forward: \(accept)"]
        )

        let dropped = Self.wanted.text.replacingOccurrences(
            of: "type filter hook forward priority filter; policy accept;",
            with: "type filter hook forward priority filter; policy drop;"
        )
        #expect(
            NFTListing(parsing: dropped).differences(from: Self.wanted.chains) == [
                "missing in forward: type filter hook forward priority filter; policy accept;",
                "unexpected in forward: type filter hook forward priority filter; policy drop;",
            ]
        )

        let extra = Self.wanted.text.replacingOccurrences(
            of: "\n}\n",
            with: "\n\n\tset blocked {\n\t\ttype ipv4_addr\n\t}\n\n\tchain mine {\n\t\tcounter\n\t}\n}\n"
        )
        #expect(
            NFTListing(parsing: extra).differences(from: Self.wanted.chains) == [
                "unexpected chain mine", "unexpected set blocked",
            ]
        )
        let map = Self.wanted.text.replacingOccurrences(
            of: "\n}\n",
            with: "\n\n\tmap ports {\n\t\ttype inet_service : verdict\n\t}\n}\n"
        )
        #expect(
            NFTListing(parsing: map).differences(from: Self.wanted.chains) == [
                "unexpected: map ports {", "unexpected: type inet_service : verdict", "unexpected: }",
            ]
        )
    }

    @Test func namesRulesOutOfOrder() {
        var chains = Self.wanted.chains
        chains[1].lines.swapAt(1, 2)
        let listing = NFTListing(chains: chains)
        #expect(listing.differences(from: Self.wanted.chains) == ["forward: rules out of order"])
    }

    @Test func theKeeperCalibratesOnlyOnAListingOfTheSameShape() {
        var reworded = Self.wanted.chains
        reworded[0].lines[1] = "meta mark & 0x4000 == 0x4000 return"
        #expect(TrafficRuleKeeper.sameShape(NFTListing(chains: reworded), Self.wanted.chains))
        var short = Self.wanted.chains
        short[0].lines.removeLast()
        #expect(!TrafficRuleKeeper.sameShape(NFTListing(chains: short), Self.wanted.chains))
        #expect(
            !TrafficRuleKeeper.sameShape(
                NFTListing(chains: Self.wanted.chains, otherLines: ["set s {"]),
                Self.wanted.chains
            )
        )
    }

    @Test func errorsNameTheFix() {
        let missing = TrafficRulesError(operation: "apply table ip weft", .toolMissing(searched: ["/usr/sbin/nft"]))
        #expect(missing.description.contains("install nftables"))
        #expect(missing.description.contains("--ip-masq=false --iptables-forward-rules=false --port-filter=false"))
        let denied = TrafficRulesError(
            operation: "apply table ip weft",
            .refused(
                status: 1,
                output: "Error: Could not process rule: Operation not permitted\nadd table ip weft\n^^^\n"
            )
        )
        #expect(
            denied.description.contains(
                "nft says Error: Could not process rule: Operation not permitted; weftd needs CAP_NET_ADMIN"
            )
        )
        let syntax = TrafficRulesError(
            operation: "apply table ip weft",
            .refused(status: 1, output: "\nError: syntax error\n  bogus\n  ^^^^\n")
        )
        #expect(syntax.description == "cannot apply table ip weft: nft exited 1: Error: syntax error")
        #expect(!syntax.description.contains("\n"))
    }
}
