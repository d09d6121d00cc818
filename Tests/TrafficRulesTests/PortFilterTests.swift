import Addressing
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

/// The port filter's chain, set and counter as weftd writes them and nft prints them, the element
/// changes between two sets of peers, and the counter read from nft's JSON.
@Suite struct PortFilterTests {
    @Test func rendersTheSetTheCounterAndTheInputChain() {
        // nft 1.0.6 reads this script and lists the table the same way, but for the elements,
        // which it wraps two to a line.
        #expect(
            Rulesets.portFiltered().text == """
                table ip weft {
                \tcounter port-filter-dropped {
                \t\tpackets 0 bytes 0
                \t}

                \tset peers {
                \t\ttype ipv4_addr
                \t\telements = { 198.18.0.2, 198.18.0.9, 198.18.0.10 }
                \t}

                \tchain forward {
                \t\ttype filter hook forward priority filter; policy accept;
                \t\tip saddr 10.244.0.0/16 accept
                \t\tip daddr 10.244.0.0/16 accept
                \t}

                \tchain input {
                \t\ttype filter hook input priority filter; policy accept;
                \t\tudp dport 8472 ip saddr != @peers counter name "port-filter-dropped" drop
                \t}
                }

                """
        )
        // No peers: an empty set (nft takes no `elements = { }`), which drops every sender.
        let lonely = Rulesets.portFiltered(forward: false, peers: [], port: 8285)
        #expect(lonely.sets == [NFTSet(name: "peers", lines: ["type ipv4_addr"], elements: [])])
        #expect(!lonely.text.contains("elements"))
        #expect(lonely.chains.map(\.name) == ["input"])
        #expect(
            lonely.chains[0].lines[1] == "udp dport 8285 ip saddr != @peers counter name \"port-filter-dropped\" drop"
        )
        #expect(!lonely.isEmpty, "a filter alone is a ruleset")
        #expect(lonely.counters == ["port-filter-dropped"])
        #expect(Rulesets.ipv4().sets.isEmpty && Rulesets.ipv4().counters.isEmpty)
    }

    @Test func onlyAChangeOfPeersIsAppliedInPlace() {
        let base = Rulesets.portFiltered()
        var joined = base
        joined.portFilter!.peers.insert(IPv4Address(198, 18, 0, 3))
        #expect(joined.differsOnlyInPeers(from: base))
        #expect(!base.differsOnlyInPeers(from: base), "nothing to change")
        var otherPort = joined
        otherPort.portFilter!.port = 4789
        #expect(!otherPort.differsOnlyInPeers(from: base), "a new port is a new chain")
        var masquerading = joined
        masquerading.masquerade = true
        #expect(!masquerading.differsOnlyInPeers(from: base))
        var unfiltered = base
        unfiltered.portFilter = nil
        #expect(
            !base.differsOnlyInPeers(from: unfiltered) && !unfiltered.differsOnlyInPeers(from: base),
            "adding the filter is a new table"
        )
    }

    @Test func theElementScriptAddsAndDeletesInOneTransaction() {
        let filter = PortFilter(
            port: 8472,
            peers: [IPv4Address(198, 18, 0, 2), IPv4Address(198, 18, 0, 3), IPv4Address(198, 18, 0, 20)]
        )
        let old: Set<IPv4Address> = [
            IPv4Address(198, 18, 0, 2), IPv4Address(198, 18, 0, 4), IPv4Address(198, 18, 0, 1),
        ]
        let changes = filter.changes(from: old)
        #expect(changes.added == [IPv4Address(198, 18, 0, 3), IPv4Address(198, 18, 0, 20)], "in address order")
        #expect(changes.removed == [IPv4Address(198, 18, 0, 1), IPv4Address(198, 18, 0, 4)])
        #expect(
            filter.elementScript(from: old) == """
                add element ip weft peers { 198.18.0.3, 198.18.0.20 }
                delete element ip weft peers { 198.18.0.1, 198.18.0.4 }

                """
        )
        #expect(filter.elementScript(from: filter.peers) == nil)
        #expect(filter.elementScript(from: []) == "add element ip weft peers { 198.18.0.2, 198.18.0.3, 198.18.0.20 }\n")
        #expect(
            PortFilter(port: 8472, peers: []).elementScript(from: [IPv4Address(198, 18, 0, 2)])
                == "delete element ip weft peers { 198.18.0.2 }\n"
        )
    }

    @Test func readsTheCounterFromNftJSON() {
        // What nft 1.0.6 printed for `nft -j list counter ip weft port-filter-dropped`.
        let json =
            #"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"counter": {"family": "ip", "name": "port-filter-dropped", "table": "weft", "handle": 3, "packets": 12, "bytes": 1104}}]}"#
        #expect(PortFilterCounts(nftJSON: json) == PortFilterCounts(packets: 12, bytes: 1104))
        #expect(PortFilterCounts(nftJSON: #"{"nftables": [{"metainfo": {"version": "1.0.6"}}]}"#) == nil)
        #expect(PortFilterCounts(nftJSON: "") == nil)
        #expect(
            PortFilterCounts(packets: 1, bytes: 2) + PortFilterCounts(packets: 3, bytes: 4)
                == PortFilterCounts(packets: 4, bytes: 6)
        )
    }

    /// nft's listing of the filter: the elements wrapped two to a line in its own order, the
    /// counter with the kernel's values; neither is a difference, a missing or extra element is.
    @Test func aListingComparesElementsAsASetAndIgnoresCounterValues() {
        let wanted = Rulesets.portFiltered()
        let listed = """
            table ip weft {
            \tcounter port-filter-dropped {
            \t\tpackets 7 bytes 644
            \t}

            \tset peers {
            \t\ttype ipv4_addr
            \t\telements = { 198.18.0.10, 198.18.0.2,
            \t\t\t     198.18.0.9 }
            \t}

            \tchain forward {
            \t\ttype filter hook forward priority filter; policy accept;
            \t\tip saddr 10.244.0.0/16 accept
            \t\tip daddr 10.244.0.0/16 accept
            \t}

            \tchain input {
            \t\ttype filter hook input priority filter; policy accept;
            \t\tudp dport 8472 ip saddr != @peers counter name "port-filter-dropped" drop
            \t}
            }
            """
        let listing = NFTListing(parsing: listed)
        #expect(
            listing.sets == [
                NFTSet(name: "peers", lines: ["type ipv4_addr"], elements: ["198.18.0.10", "198.18.0.2", "198.18.0.9"])
            ]
        )
        #expect(listing.counters == ["port-filter-dropped"])
        #expect(listing.otherLines.isEmpty)
        #expect(listing.differences(from: wanted.chains, sets: wanted.sets, counters: wanted.counters).isEmpty)
        #expect(
            NFTListing(parsing: wanted.text).differences(
                from: wanted.chains,
                sets: wanted.sets,
                counters: wanted.counters
            ).isEmpty
        )

        let edited = listed.replacingOccurrences(of: "198.18.0.10, 198.18.0.2,", with: "198.18.0.10, 198.18.0.66,")
        #expect(
            NFTListing(parsing: edited).differences(from: wanted.chains, sets: wanted.sets, counters: wanted.counters)
                == ["missing in set peers: 198.18.0.2", "unexpected in set peers: 198.18.0.66"]
        )
        let emptied = listed.replacingOccurrences(
            of: "\t\telements = { 198.18.0.10, 198.18.0.2,\n\t\t\t     198.18.0.9 }\n",
            with: ""
        )
        #expect(
            NFTListing(parsing: emptied).differences(from: wanted.chains, sets: wanted.sets, counters: wanted.counters)
                == ["missing in set peers: 198.18.0.2, 198.18.0.9, 198.18.0.10"]
        )
        let noCounter = listed.replacingOccurrences(
            of: "\tcounter port-filter-dropped {\n\t\tpackets 7 bytes 644\n\t}\n",
            with: ""
        )
        #expect(
            NFTListing(parsing: noCounter).differences(
                from: wanted.chains,
                sets: wanted.sets,
                counters: wanted.counters
            )
                == ["missing counter port-filter-dropped"]
        )
        let noSet = NFTListing(parsing: listed.replacingOccurrences(of: "set peers {", with: "set others {"))
        #expect(
            noSet.differences(from: wanted.chains, sets: wanted.sets, counters: wanted.counters) == [
                "missing set peers", "unexpected set others",
            ]
        )
        let interval = listed.replacingOccurrences(of: "type ipv4_addr\n", with: "type ipv4_addr\n\t\tflags interval\n")
        #expect(
            NFTListing(parsing: interval).differences(from: wanted.chains, sets: wanted.sets, counters: wanted.counters)
                == ["set peers is type ipv4_addr; flags interval, not type ipv4_addr"]
        )
        // Without a filter wanted, the filter's pieces are each a difference.
        let plain = Rulesets.ipv4(masquerade: false)
        #expect(
            listing.differences(from: plain.chains, sets: plain.sets, counters: plain.counters)
                == ["unexpected chain input", "unexpected set peers", "unexpected counter port-filter-dropped"]
        )
    }
}
