import Addressing
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

/// `table ip6 weft` kept beside `table ip weft` by one keeper, against the real nft in a namespace.
extension TrafficRuleKeeperTests {
    @Test(.timeLimit(.minutes(1)))
    func keepsTheIPv6TableBesideTheIPv4One() async throws {
        let namespace = try Namespace()
        defer { namespace.close() }
        func listing6() throws -> String? {
            let (status, output) = try namespace.nft(["list", "table", "ip6", "weft"])
            return status == 0 ? output : nil
        }
        let keeper = TrafficRuleKeeper(nft: namespace.tables)
        let ruleset = Rulesets.dualStack()
        try await keeper.install(ruleset)
        #expect(try namespace.listing() == ruleset.text)
        #expect(try listing6() == ruleset.ipv6Text)
        #expect(await keeper.check() == .intact)

        // One IPv6 rule deleted by handle.
        let masquerade = "ip6 saddr fc00::/48 ip6 daddr != ff00::/8 masquerade fully-random"
        let (_, annotated) = try namespace.nft(["-a", "list", "chain", "ip6", "weft", "postrouting"])
        let line = try #require(annotated.split(separator: "\n").first { $0.contains(masquerade) })
        let handle = try #require(line.split(separator: " ").last)
        #expect(try namespace.nft(["delete", "rule", "ip6", "weft", "postrouting", "handle", String(handle)]).0 == 0)
        #expect(
            await keeper.check()
                == .restored(differences: ["ip6: missing in postrouting: \(masquerade)"])
        )
        #expect(try listing6() == ruleset.ipv6Text)

        // The IPv6 table deleted.
        #expect(try namespace.nft(["delete", "table", "ip6", "weft"]).0 == 0)
        #expect(await keeper.check() == .restored(differences: ["missing table ip6 weft"]))
        #expect(try listing6() == ruleset.ipv6Text)

        // An IPv4-only ruleset takes the IPv6 table away; the dual-stack one brings it back.
        try await keeper.install(Rulesets.ipv4())
        #expect(try listing6() == nil)
        #expect(try namespace.listing() == ruleset.text)
        #expect(await keeper.check() == .intact)
        try await keeper.install(ruleset)
        #expect(try listing6() == ruleset.ipv6Text)

        #expect(try await keeper.remove() == true)
        #expect(try namespace.listing() == nil)
        #expect(try listing6() == nil)
    }
}
