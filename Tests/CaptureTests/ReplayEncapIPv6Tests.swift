import Capture
import Foundation
import Testing

/// `weft replay encap` of inner IPv6: what host A's kernel flannel.1 put on the wire for the same
/// packets, a round trip through decap, and the ICMPv6 errors the engine writes back to the TUN.
extension ReplayEncapTests {
    /// The inner IPv6 packets host B's flannel.1 received (what host A's TUN would hand Weft).
    private var innerIPv6: [[UInt8]] {
        get throws { try Frames.read(Fixture.path("inner6-flannel1.pcap")).1.map { Array($0.bytes.dropFirst(14)) } }
    }

    @Test func innerIPv6PayloadsEqualTheKernels() throws {
        let (result, datagrams) = try encap(
            Fixture.path("inner6-flannel1.pcap"),
            backend: "vxlan",
            routes: "bed-routes-dualstack.json"
        )
        let payloads = outerPayloads(datagrams, destinationPort: 8472, sourcePorts: 32768...60999)
        let kernel = try kernelPayloads("inner6-underlay.pcap")
        #expect(payloads.count == kernel.count)
        #expect(payloads == kernel)
        #expect(result.counts["datagrams out"] == UInt64(kernel.count) && result.counts["dropped"] == 0)
    }

    @Test(arguments: ["vxlan", "udp"])
    func innerIPv6RoundTripReturnsTheInput(backend: String) throws {
        let routes = Fixture.path(backend == "vxlan" ? "bed-routes-dualstack.json" : "bed-routes-dualstack-udp.json")
        let outer = Fixture.temporaryPath("outer.pcap")
        let back = Fixture.temporaryPath("back.pcap")
        let encapResult = try WeftCommand.run([
            "replay", "encap", "--backend", backend, "--routes", routes, "--public-ip", "198.18.0.1",
            "--input", Fixture.path("inner6-flannel1.pcap"), "--output", outer,
        ])
        #expect(encapResult.status == 0, "\(encapResult.error)")
        let decapResult = try WeftCommand.run([
            "replay", "decap", "--backend", backend, "--routes", routes, "--public-ip", "198.18.0.2",
            "--input", outer, "--output", back,
        ])
        #expect(decapResult.status == 0, "\(decapResult.error)")
        let returned = try Frames.read(back).1.map(\.bytes)
        // vxlan leaves the hop limit alone; the udp backend costs a hop on each side.
        let expected = try innerIPv6.map { packet in
            var packet = packet
            if backend == "udp" { packet[7] -= 2 }
            return packet
        }
        #expect(returned.count == expected.count)
        #expect(returned == expected)
    }

    @Test(arguments: ["vxlan", "udp"])
    func ipv4OnlyLeasesCountInnerIPv6AsWrongVersion(backend: String) throws {
        let (result, datagrams) = try encap(
            Fixture.path("inner6-flannel1.pcap"),
            backend: backend,
            routes: backend == "vxlan" ? "bed-routes.json" : "bed-routes-udp.json"
        )
        #expect(datagrams.isEmpty)
        #expect(result.counts["drop.wrong_version"] == UInt64(try innerIPv6.count))
    }

    /// Checks one ICMPv6 error independently: from our TUN address to the offender's source, type
    /// and code, the checksum over the IPv6 pseudo-header, and the quote of the offender.
    private func expectICMPv6Error(_ reply: [UInt8], type: UInt8, answering offender: [UInt8]) {
        #expect(reply[0] >> 4 == 6 && reply[6] == 58)
        #expect(Frames.word(reply, 4) == reply.count - 40)
        #expect(reply.count <= 1280)
        #expect(Array(reply[8..<24]) == [0xFC, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 8))
        #expect(Array(reply[24..<40]) == Array(offender[8..<24]))
        #expect(reply[40] == type && reply[41] == 0)
        let length = reply.count - 40
        let pseudo =
            Array(reply[8..<40]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF)] + [0, 0, 0, 58]
        #expect(Frames.checksum(pseudo + reply[40...]) == 0)
        #expect(Array(reply[48...]) == Array(offender.prefix(reply.count - 48)))
    }

    @Test func packetsOverTheMTUAreAnsweredWithPacketTooBig() throws {
        let tunOutput = Fixture.temporaryPath("tun.pcap")
        let (result, datagrams) = try encap(
            Fixture.path("inner6-flannel1.pcap"),
            backend: "vxlan",
            routes: "bed-routes-dualstack.json",
            extra: ["--mtu", "1280", "--tun-output", tunOutput]
        )
        let inner = try innerIPv6
        let oversize = inner.filter { $0.count > 1280 }
        #expect(!oversize.isEmpty)
        #expect(datagrams.count == inner.count - oversize.count)
        #expect(result.counts["drop.oversize"] == UInt64(oversize.count))
        #expect(result.counts["icmp to tun"] == UInt64(oversize.count))
        let replies = try Frames.read(tunOutput).1.map(\.bytes)
        #expect(replies.count == oversize.count)
        for (reply, offender) in zip(replies, oversize) {
            expectICMPv6Error(reply, type: 2, answering: offender)
            #expect(Array(reply[44..<48]) == [0, 0, 0x05, 0x00])  // the MTU, 1280
        }
    }

    @Test func noRouteIsAnsweredWithDestinationUnreachable() throws {
        // Only our own lease: no peer owns fc00:0:0:2::/64.
        let routes = Fixture.temporaryPath("routes.json")
        let json = try String(contentsOfFile: Fixture.path("bed-routes-dualstack.json"), encoding: .utf8)
        let ours = json.split(separator: "\n").filter { !$0.contains("10.244.2.0") }.joined(separator: "\n")
        try Data(ours.replacingOccurrences(of: "}},\n}", with: "}}\n}").utf8).write(to: URL(fileURLWithPath: routes))
        let tunOutput = Fixture.temporaryPath("tun.pcap")
        let output = Fixture.temporaryPath("outer.pcap")
        let result = try WeftCommand.run([
            "replay", "encap", "--backend", "vxlan", "--routes", routes, "--public-ip", "198.18.0.1",
            "--input", Fixture.path("inner6-flannel1.pcap"), "--output", output, "--tun-output", tunOutput,
        ])
        #expect(result.status == 0, "\(result.error)")
        let inner = try innerIPv6
        // Nothing in the capture is itself an ICMPv6 error, so every packet is answered.
        #expect(!inner.contains { $0[6] == 58 && $0[40] < 128 })
        #expect(result.counts["drop.no_route"] == UInt64(inner.count))
        let replies = try Frames.read(tunOutput).1.map(\.bytes)
        #expect(replies.count == inner.count)
        for (reply, offender) in zip(replies, inner) { expectICMPv6Error(reply, type: 1, answering: offender) }
    }
}
