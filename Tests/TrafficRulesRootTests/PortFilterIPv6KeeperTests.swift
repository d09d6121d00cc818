import Addressing
import Foundation
import Glibc
import TestThreads
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

/// The port filter's IPv6 side through the keeper against the real nft, in a namespace of the
/// test's own: datagrams from ::1 to the namespace's own port stand in for a stranger's over the
/// IPv6 underlay, dropped by `table ip6 weft`'s input chain (beside the masquerade rules) and
/// counted there; admitted once ::1 is in the IPv6 set. Both families' sets change in one
/// transaction, the count survives replacements, and a filter nobody keeps is deleted.
extension PortFilterKeeperTests {
    static let ipv6Loopback = IPv6Address("::1")!
    /// 40 bytes IPv6 + 8 UDP + 22 payload.
    static let ipv6DatagramBytes: UInt64 = 70

    @Test(.timeLimit(.minutes(1)))
    func theIPv6SetFollowsPeersAndDropsAndCountsStrangers() async throws {
        let namespace = try TrafficRuleKeeperTests.Namespace()
        defer { namespace.close() }
        #expect(try runIP(["-n", namespace.name, "link", "set", "lo", "up"]).0 == 0)
        let receiver = try namespace.inside { try Self.socket(bindingPort: Self.port, ipv6: true) }
        defer { close(receiver) }
        func listing6() throws -> String? {
            let (status, output) = try namespace.nft(["list", "table", "ip6", "weft"])
            return status == 0 ? output : nil
        }
        func differences6(_ ruleset: TrafficRuleset) throws -> [String] {
            let listed = try #require(try listing6())
            return NFTListing(parsing: listed).differences(
                from: ruleset.ipv6Chains,
                sets: ruleset.ipv6Sets,
                counters: ruleset.ipv6Counters
            )
        }
        let keeper = TrafficRuleKeeper(nft: namespace.tables)
        var ruleset = Rulesets.dualStackPortFiltered(port: Self.port)
        try await keeper.install(ruleset)
        #expect(try differences6(ruleset).isEmpty)
        #expect(try listing6()?.contains("chain postrouting") == true, "the masquerade rules share the table")
        #expect(await keeper.check() == .intact)
        #expect(await keeper.portFilterCounts(family: "ip6") == PortFilterCounts())
        #expect(
            try await TrafficRuleKeeper(nft: namespace.tables).listedIPv6Peers() == Rulesets.ipv6Peers,
            "what a restarted weftd finds"
        )

        // 1. A stranger over IPv6: dropped before the socket, counted in table ip6 weft only.
        try namespace.inside { try Self.send(3, "stranger", to: Self.port, ipv6: true) }
        #expect(
            await keeper.portFilterCounts(family: "ip6")
                == PortFilterCounts(packets: 3, bytes: 3 * Self.ipv6DatagramBytes)
        )
        #expect(await keeper.portFilterCounts() == PortFilterCounts(), "the IPv4 counter saw none")
        #expect(keeper.lastIPv6PortFilterCounts?.packets == 3)

        // 2. Admitted as a peer: the set changed in place (the counter keeps its count), and the
        //    IPv4 set in the same transaction.
        ruleset.portFilter!.ipv6Peers!.insert(Self.ipv6Loopback)
        ruleset.portFilter!.peers.insert(IPv4Address(198, 18, 0, 77))
        try await keeper.install(ruleset)
        #expect(try differences6(ruleset).isEmpty)
        #expect(try namespace.listing()?.contains("198.18.0.77") == true)
        try namespace.inside { try Self.send(1, "peer", to: Self.port, ipv6: true) }
        #expect(try Self.receiveAll(receiver) == ["peer"])
        #expect(await keeper.portFilterCounts(family: "ip6")?.packets == 3)
        #expect(await keeper.check() == .intact)

        // 3. Removed again: dropped again.
        ruleset.portFilter!.ipv6Peers!.remove(Self.ipv6Loopback)
        try await keeper.install(ruleset)
        #expect(try listing6()?.contains("::1") == false)
        try namespace.inside { try Self.send(1, "stranger", to: Self.port, ipv6: true) }
        #expect(await keeper.portFilterCounts(family: "ip6")?.packets == 4)

        // 4. A whole new table (no masquerade) starts a new counter; the total carries on.
        ruleset.masquerade = false
        try await keeper.install(ruleset)
        #expect(try listing6()?.contains("chain postrouting") == false)
        #expect(await keeper.portFilterCounts(family: "ip6")?.packets == 4)
        try namespace.inside { try Self.send(1, "stranger", to: Self.port, ipv6: true) }
        #expect(await keeper.portFilterCounts(family: "ip6")?.packets == 5)

        // 5. Tampering: an element deleted from the IPv6 set is put back by the check.
        #expect(try namespace.nft(["delete", "element", "ip6", "weft", "peers", "{ 2001:db8::9 }"]).0 == 0)
        #expect(await keeper.check() == .restored(differences: ["ip6: missing in set peers: 2001:db8::9"]))
        #expect(try differences6(ruleset).isEmpty)
        #expect(await keeper.portFilterCounts(family: "ip6")?.packets == 5)

        // 6. Left by an earlier run: a keeper that wants no rules deletes the filter from both tables.
        let next = TrafficRuleKeeper(nft: namespace.tables)
        try await next.install(
            TrafficRuleset(network: ruleset.network, subnet: ruleset.subnet, masquerade: false, forwardAccept: false)
        )
        #expect(try await next.removeLeftoverPortFilter() == true)
        let emptied = try #require(try listing6())
        #expect(NFTListing(parsing: emptied) == NFTListing(chains: []), "\(emptied)")
        #expect(try await next.listedIPv6Peers() == nil)
        #expect(try await next.listedPeers() == nil)
        try namespace.inside { try Self.send(1, "unfiltered", to: Self.port, ipv6: true) }
        #expect(try Self.receiveAll(receiver) == ["unfiltered"])
    }
}
