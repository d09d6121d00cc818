import Capture
import Foundation
import Testing

/// `weft replay decap` on the IPv6 captures: inner IPv6 over the IPv4 underlay comes out as host
/// B's flannel.1 received it, admitted or dropped by the IPv6 leases as the engine does; frames of
/// the IPv6 underlay (flannel-v6.1) are counted apart, since the engine cannot take them.
extension ReplayDecapTests {
    /// A ROUTES.json with the bed's two vxlan leases, their IPv6 halves as given.
    private func routes(a: String, b: String) throws -> String {
        let path = Fixture.temporaryPath("routes.json")
        let lease = { (key: String, ip: String, mac: String) in
            "\"\(key)\": {\"PublicIP\": \"\(ip)\", \"PublicIPv6\": null, \"BackendType\": \"vxlan\", \"BackendData\": {\"VNI\": 1, \"VtepMAC\": \"\(mac)\"}}"
        }
        let json =
            "{" + lease("10.244.1.0-24\(a)", "198.18.0.1", "aa:bb:cc:dd:ee:01") + ", "
            + lease("10.244.2.0-24\(b)", "198.18.0.2", Self.receiverMAC) + "}"
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    private var asHostB: [String] { ["--public-ip", "198.18.0.2"] }

    @Test func innerIPv6MatchesWhatFlannel1Received() throws {
        let expected = try flannelInner("inner6")
        #expect(expected.allSatisfy { $0.first.map { $0 >> 4 } == 6 })
        let (result, inner) = try decap(Fixture.path("inner6-underlay.pcap"), ["--vtep-mac", Self.receiverMAC])
        #expect(inner == expected)
        let counts = result.counts
        #expect(counts["packets out"] == UInt64(expected.count))
        #expect(counts["drop.not_our_mac"] == counts["datagrams"]! - UInt64(expected.count))
        #expect(counts["dropped"] == counts["drop.not_our_mac"])
        #expect(counts["ipv6 underlay (not replayed)"] == 0)
    }

    @Test func dualStackLeasesAdmitTheInnerIPv6() throws {
        let expected = try flannelInner("inner6")
        let (result, inner) = try decap(
            Fixture.path("inner6-underlay.pcap"),
            ["--routes", Fixture.path("bed-routes-dualstack.json")] + asHostB
        )
        #expect(inner == expected)
        // The frames to host A are not ours; nothing else is dropped.
        let toA = UInt64(try framesToward("198.18.0.1", in: "inner6-underlay.pcap"))
        #expect(toA > 0)
        #expect(result.counts["drop.not_our_traffic"] == toA)
        #expect(result.counts["dropped"] == toA)
    }

    @Test func ipv4OnlyLeasesRefuseInnerIPv6AsTheEngineDoes() throws {
        let (result, inner) = try decap(
            Fixture.path("inner6-underlay.pcap"),
            ["--routes", Fixture.path("bed-routes.json")] + asHostB
        )
        #expect(inner.isEmpty)
        let toB = UInt64(try framesToward("198.18.0.2", in: "inner6-underlay.pcap"))
        #expect(result.counts["drop.not_ipv4"] == toB)
    }

    @Test(arguments: [
        ("&fc00:0:0:9::-64", "&fc00:0:0:2::-64", "spoofed_source"),  // A's IPv6 subnet is not the source's
        ("&fc00:0:0:1::-64", "&fc00:0:0:8::-64", "not_our_subnet"),  // ours is not the destination's
        ("&fc00:0:0:1::-64", "", "not_our_subnet"),  // we have no IPv6 subnet at all
    ])
    func ipv6AdmissionDropsByReason(a: String, b: String, reason: String) throws {
        let (result, inner) = try decap(
            Fixture.path("inner6-underlay.pcap"),
            ["--routes", try routes(a: a, b: b)] + asHostB
        )
        #expect(inner.isEmpty)
        let toB = UInt64(try framesToward("198.18.0.2", in: "inner6-underlay.pcap"))
        #expect(result.counts["drop.\(reason)"] == toB)
    }

    @Test(arguments: [[], ["--routes", "bed-routes-dualstack.json", "--public-ip", "198.18.0.2"]])
    func ipv6UnderlayIsCountedNotReplayed(extra: [String]) throws {
        let extra = extra.map { $0.hasSuffix(".json") ? Fixture.path($0) : $0 }
        let (_, frames) = try Frames.read(Fixture.path("underlay6-underlay.pcap"))
        let (result, inner) = try decap(
            Fixture.path("underlay6-underlay.pcap"),
            ["--vtep-mac", "aa:bb:cc:dd:ee:12"] + extra
        )
        #expect(inner.isEmpty)
        let counts = result.counts
        #expect(counts["frames in"] == UInt64(frames.count))
        #expect(counts["ipv6 underlay (not replayed)"] == UInt64(frames.count))
        #expect(counts["datagrams"] == 0 && counts["dropped"] == 0)
        let lines = result.error.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("no IPv6 underlay") == true)
    }
}
