import Capture
import Foundation
import TestThreads
import Testing

/// `weft replay decap` on real kernel-VXLAN captures (scripts/capture-fixtures.sh): what Weft would
/// write to host B's TUN must be, byte for byte and in order, what host B's flannel.1 received.
@Suite(.ownThread) struct ReplayDecapTests {
    static let receiverMAC = "aa:bb:cc:dd:ee:02"

    /// The inner IPv4 packets host B's flannel.1 received (tcpdump -Q in), Ethernet header removed.
    func flannelInner(_ scenario: String) throws -> [[UInt8]] {
        let (linkType, packets) = try Frames.read(Fixture.path("\(scenario)-flannel1.pcap"))
        #expect(linkType == .ethernet)
        return packets.map { Array($0.bytes.dropFirst(14)) }
    }

    func decap(_ input: String, _ extra: [String] = []) throws -> (WeftCommand.Result, [[UInt8]]) {
        let output = Fixture.temporaryPath("inner.pcap")
        let result = try WeftCommand.run(
            [
                "replay", "decap", "--backend", "vxlan", "--vni", "1",
                "--input", input, "--output", output,
            ] + extra
        )
        #expect(result.status == 0, "\(result.error)")
        let (linkType, packets) = try Frames.read(output)
        #expect(linkType == .raw)
        return (result, packets.map(\.bytes))
    }

    @Test(arguments: [
        ("offloads-off", "offloads-off-underlay.pcap"),
        ("offloads-on", "offloads-on-underlay.pcap"),
        ("udp-gso", "udp-gso-underlay.pcap"),
        ("udp-gso", "udp-gso-underlay.pcapng"),
        ("udp-gso", "udp-gso-underlay-sll.pcap"),
        ("udp-gso", "udp-gso-underlay-sll2.pcap"),
    ])
    func innerPacketsMatchWhatFlannel1Received(scenario: String, underlay: String) throws {
        let expected = try flannelInner(scenario)
        let (result, inner) = try decap(Fixture.path(underlay), ["--vtep-mac", Self.receiverMAC])
        #expect(inner.count == expected.count)
        #expect(inner == expected)
        let counts = result.counts
        #expect(counts["packets out"] == UInt64(expected.count))
        // Everything else in the capture went the other way, to host A's MAC.
        let (_, frames) = try Frames.read(Fixture.path(underlay))
        #expect(counts["frames in"] == UInt64(frames.count))
        #expect(counts["drop.not_our_mac"] == counts["datagrams"]! - UInt64(expected.count))
        #expect(counts["dropped"] == counts["drop.not_our_mac"])
    }

    /// Frames towards host A, found by reading the outer IPv4 destination of each Ethernet frame.
    func framesToward(_ address: String, in name: String) throws -> Int {
        let (_, frames) = try Frames.read(Fixture.path(name))
        return frames.filter { Frames.dotted($0.bytes, 14 + 16) == address }.count
    }

    @Test func offloadsOffHasOneDatagramPerFrame() throws {
        let (result, _) = try decap(Fixture.path("offloads-off-underlay.pcap"), ["--vtep-mac", Self.receiverMAC])
        #expect(result.counts["gso super-frames"] == 0)
        #expect(result.counts["datagrams"] == result.counts["frames in"])
        #expect(
            result.counts["drop.not_our_mac"]
                == UInt64(try framesToward("198.18.0.1", in: "offloads-off-underlay.pcap"))
        )
    }

    @Test func tunnelTSOFramesStayWhole() throws {
        // The kernel's vxlan device sends TCP super-packets as one VXLAN frame; flannel.1 on the
        // receiver shows the same super-packet, so it is one datagram with one large inner packet.
        let (result, inner) = try decap(Fixture.path("offloads-on-underlay.pcap"), ["--vtep-mac", Self.receiverMAC])
        #expect(result.counts["gso super-frames"] == 0)
        #expect(inner.contains { $0.count > 1500 })
    }

    @Test func udpGSOSuperFramesAreSplit() throws {
        let (result, inner) = try decap(Fixture.path("udp-gso-underlay.pcap"), ["--vtep-mac", Self.receiverMAC])
        // The fixture's sender made three sends of 5, 3 and 3 datagrams.
        #expect(result.counts["gso super-frames"] == 3)
        #expect(inner.count == 11)
        let towardA = try framesToward("198.18.0.1", in: "udp-gso-underlay.pcap")
        #expect(result.counts["datagrams"] == UInt64(11 + towardA))
    }

    @Test func routesAndPublicIPKeepTheSameOutput() throws {
        let expected = try flannelInner("offloads-off")
        let (result, inner) = try decap(
            Fixture.path("offloads-off-underlay.pcap"),
            ["--routes", Fixture.path("bed-routes.json"), "--public-ip", "198.18.0.2"]
        )
        #expect(inner == expected)
        // With our address known, frames to host A are not ours at all: no MAC check is reached.
        #expect(
            result.counts["drop.not_our_traffic"]
                == UInt64(try framesToward("198.18.0.1", in: "offloads-off-underlay.pcap"))
        )
        #expect(result.counts["drop.not_our_mac"] == nil)
    }

    @Test func aSenderWithoutALeaseIsUnknown() throws {
        let routes = Fixture.temporaryPath("routes.json")
        try Data(
            #"{"10.244.1.0-24": {"PublicIP": "198.18.0.9", "BackendType": "vxlan", "BackendData": {"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:09"}}}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: routes))
        let expected = try flannelInner("offloads-off")
        let (result, inner) = try decap(
            Fixture.path("offloads-off-underlay.pcap"),
            ["--vtep-mac", Self.receiverMAC, "--routes", routes]
        )
        #expect(inner.isEmpty)
        #expect(result.counts["drop.unknown_sender"] == UInt64(expected.count))
    }

    @Test func aPeerSendingFromAnotherSubnetIsSpoofing() throws {
        let routes = Fixture.temporaryPath("routes.json")
        try Data(
            #"{"10.244.7.0-24": {"PublicIP": "198.18.0.1", "BackendType": "vxlan", "BackendData": {"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:01"}}}"#
                .utf8
        )
        .write(to: URL(fileURLWithPath: routes))
        let expected = try flannelInner("offloads-off")
        let (result, inner) = try decap(
            Fixture.path("offloads-off-underlay.pcap"),
            ["--vtep-mac", Self.receiverMAC, "--routes", routes]
        )
        #expect(inner.isEmpty)
        #expect(result.counts["drop.spoofed_source"] == UInt64(expected.count))
    }

    @Test func wrongVNIDropsEveryDatagram() throws {
        let output = Fixture.temporaryPath("inner.pcap")
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "vxlan", "--vni", "2", "--vtep-mac", Self.receiverMAC,
            "--input", Fixture.path("udp-gso-underlay.pcap"), "--output", output,
        ])
        #expect(result.status == 0)
        #expect(result.counts["packets out"] == 0)
        #expect(result.counts["drop.wrong_vni"] == result.counts["datagrams"])
    }
}
