import Capture
import Foundation
import TestThreads
import Testing

/// `weft replay encap`, checked against the kernel's own encapsulation of the same packets, against
/// committed golden outputs, against tshark's dissection, and by a round trip through decap.
@Suite(.ownThread) struct ReplayEncapTests {
    func encap(
        _ input: String,
        backend: String,
        routes: String = "bed-routes.json",
        extra: [String] = []
    ) throws -> (WeftCommand.Result, [CapturedPacket]) {
        let output = Fixture.temporaryPath("outer.pcap")
        let result = try WeftCommand.run(
            [
                "replay", "encap", "--backend", backend, "--routes", Fixture.path(routes),
                "--public-ip", "198.18.0.1", "--input", input, "--output", output,
            ] + extra
        )
        #expect(result.status == 0, "\(result.error)")
        let (linkType, packets) = try Frames.read(output)
        #expect(linkType == .raw)
        return (result, packets)
    }

    /// Checks every outer header field independently; returns the UDP payloads.
    func outerPayloads(
        _ datagrams: [CapturedPacket],
        destinationPort: Int,
        sourcePorts: ClosedRange<Int>
    ) -> [[UInt8]] {
        datagrams.enumerated().map { index, datagram in
            let bytes = datagram.bytes
            #expect(bytes[0] == 0x45 && bytes[9] == 17 && bytes[8] == 64)
            #expect(Frames.word(bytes, 2) == bytes.count)
            #expect(Frames.word(bytes, 4) == (index + 1) & 0xFFFF)  // identification counts datagrams
            #expect(Frames.word(bytes, 6) == 0)  // DF clear, as the kernel's vxlan sends
            #expect(Frames.checksum(bytes[0..<20]) == 0)
            #expect(Frames.dotted(bytes, 12) == "198.18.0.1" && Frames.dotted(bytes, 16) == "198.18.0.2")
            let udp = Array(bytes[20...])
            #expect(sourcePorts.contains(Frames.word(udp, 0)))
            #expect(Frames.word(udp, 2) == destinationPort)
            #expect(Frames.word(udp, 4) == udp.count)
            let pseudo = Array(bytes[12..<20]) + [0, 17, UInt8(udp.count >> 8), UInt8(udp.count & 0xFF)]
            #expect(Frames.checksum(pseudo + udp) == 0)
            return Array(udp[8...])
        }
    }

    /// What the kernel put in the UDP payload of each frame host A sent to host B.
    func kernelPayloads(_ underlay: String) throws -> [[UInt8]] {
        try Frames.read(Fixture.path(underlay)).1.map(\.bytes)
            .filter { Frames.dotted($0, 14 + 16) == "198.18.0.2" }
            .map { Array($0[(14 + 20 + 8)...]) }
    }

    @Test func vxlanPayloadsEqualTheKernelsForTheSamePackets() throws {
        // Host B's flannel.1 saw exactly what host A's TUN would have handed Weft (vxlan leaves the
        // TTL alone), with the inner Ethernet header on: encap reads Ethernet input too.
        let (result, datagrams) = try encap(Fixture.path("offloads-off-flannel1.pcap"), backend: "vxlan")
        let payloads = outerPayloads(datagrams, destinationPort: 8472, sourcePorts: 32768...60999)
        let kernel = try kernelPayloads("offloads-off-underlay.pcap")
        #expect(payloads.count == kernel.count)
        #expect(payloads == kernel)
        #expect(result.counts["packets in"] == UInt64(kernel.count))
        #expect(result.counts["datagrams out"] == UInt64(kernel.count))
        #expect(result.counts["dropped"] == 0)
    }

    @Test func oneFlowKeepsOneSourcePort() throws {
        let (_, datagrams) = try encap(Fixture.path("offloads-off-flannel1.pcap"), backend: "vxlan")
        var portsByFlow: [[UInt8]: Set<Int>] = [:]
        for datagram in datagrams.map(\.bytes) {
            let inner = Array(datagram[(20 + 8 + 22)...])
            let headerLength = Int(inner[0] & 0x0F) * 4
            let flow =
                Array(inner[9...9]) + Array(inner[12..<20])
                + (inner[9] == 6 ? Array(inner[headerLength..<headerLength + 4]) : [])
            portsByFlow[flow, default: []].insert(Frames.word(datagram, 20))
        }
        #expect(portsByFlow.values.allSatisfy { $0.count == 1 })
    }

    @Test(arguments: ["vxlan", "udp"])
    func matchesTheCommittedGolden(backend: String) throws {
        let routes = backend == "vxlan" ? "bed-routes.json" : "bed-routes-udp.json"
        let (_, datagrams) = try encap(Fixture.path("golden-inner.pcap"), backend: backend, routes: routes)
        let (_, golden) = try Frames.read(Fixture.path("golden-encap-\(backend).pcap"))
        #expect(datagrams == golden)
    }

    @Test func udpPayloadIsTheInnerPacketOneHopOlder() throws {
        let (_, inner) = try Frames.read(Fixture.path("golden-inner.pcap"))
        let (_, datagrams) = try encap(Fixture.path("golden-inner.pcap"), backend: "udp", routes: "bed-routes-udp.json")
        // flannel's proxy sends from its own port 8285 to the peer's 8285.
        let payloads = outerPayloads(datagrams, destinationPort: 8285, sourcePorts: 8285...8285)
        #expect(payloads == inner.map { Frames.decrementingTTL($0.bytes) })
    }

    @Test(arguments: ["vxlan", "udp"])
    func roundTripReturnsTheInput(backend: String) throws {
        let routes = backend == "vxlan" ? "bed-routes.json" : "bed-routes-udp.json"
        let (_, inner) = try Frames.read(Fixture.path("golden-inner.pcap"))
        let outer = Fixture.temporaryPath("outer.pcap")
        let back = Fixture.temporaryPath("back.pcap")
        let encapResult = try WeftCommand.run([
            "replay", "encap", "--backend", backend, "--routes", Fixture.path(routes),
            "--public-ip", "198.18.0.1", "--input", Fixture.path("golden-inner.pcap"),
            "--output", outer,
        ])
        #expect(encapResult.status == 0, "\(encapResult.error)")
        let decapResult = try WeftCommand.run([
            "replay", "decap", "--backend", backend, "--routes", Fixture.path(routes),
            "--public-ip", "198.18.0.2", "--input", outer, "--output", back,
        ])
        #expect(decapResult.status == 0, "\(decapResult.error)")
        let (_, returned) = try Frames.read(back)
        // vxlan hands the packet over untouched; the udp backend costs a hop on each side.
        let expected = inner.map { backend == "vxlan" ? $0.bytes : Frames.decrementingTTL($0.bytes, by: 2) }
        #expect(returned.map(\.bytes) == expected)
        #expect(returned.map(\.timestamp) == inner.map(\.timestamp))
    }

    @Test(.enabled(if: TShark.path != nil, "tshark is not installed"))
    func tsharkDissectsTheVNIMACsAndAddresses() throws {
        let (_, inner) = try Frames.read(Fixture.path("golden-inner.pcap"))
        let output = Fixture.temporaryPath("outer.pcap")
        let result = try WeftCommand.run([
            "replay", "encap", "--backend", "vxlan", "--routes", Fixture.path("bed-routes.json"),
            "--public-ip", "198.18.0.1", "--input", Fixture.path("golden-inner.pcap"),
            "--output", output,
        ])
        #expect(result.status == 0)
        let lines = try TShark.fields(output, ["vxlan.vni", "eth.dst", "eth.src", "ip.src", "ip.dst"])
        #expect(lines.count == inner.count)
        for (line, packet) in zip(lines, inner.map(\.bytes)) {
            let innerSource = Frames.dotted(packet, 12)
            let innerDestination = Frames.dotted(packet, 16)
            #expect(
                line
                    == "1\taa:bb:cc:dd:ee:02\taa:bb:cc:dd:ee:01\t198.18.0.1,\(innerSource)\t198.18.0.2,\(innerDestination)"
            )
        }
    }

    @Test func dropsAndUnreachablesAreCountedByReason() throws {
        let valid = Frames.innerUDP(source: "10.244.1.2", destination: "10.244.2.2")
        let noRoute = Frames.innerUDP(source: "10.244.1.2", destination: "10.250.0.1")
        var icmpError = Frames.ipv4Header(
            source: "10.244.1.2",
            destination: "10.250.0.1",
            protocol: 1,
            payloadLength: 8
        )
        icmpError += [3, 1, 0, 0, 0, 0, 0, 0]
        var badIHL = valid
        badIHL[0] = 0x44
        var version6 = valid
        version6[0] = 0x60
        var longTotal = valid
        Frames.put(valid.count + 4, &longTotal, at: 2)
        // 65,500 bytes of IPv4: VXLAN's 22 plus the outer 28 would pass the 65,535 an IPv4 datagram holds.
        let huge = Frames.innerUDP(
            source: "10.244.1.2",
            destination: "10.244.2.2",
            payload: [UInt8](repeating: 1, count: 65_500 - 28)
        )
        let packets: [[UInt8]] = [
            valid, noRoute, icmpError, Array(valid.prefix(10)), badIHL, version6, longTotal, huge,
        ]
        let input = Fixture.temporaryPath("inner.pcap")
        try Frames.write(packets, to: input, linkType: .raw)
        let tunOutput = Fixture.temporaryPath("tun.pcap")
        let (result, datagrams) = try encap(input, backend: "vxlan", extra: ["--tun-output", tunOutput])
        #expect(datagrams.count == 1)
        let counts = result.counts
        #expect(counts["packets in"] == 8 && counts["datagrams out"] == 1 && counts["icmp to tun"] == 1)
        #expect(counts["drop.no_route"] == 2)  // one answered, one an ICMP error (no reply to errors)
        #expect(counts["drop.truncated"] == 1 && counts["drop.bad_ihl"] == 1 && counts["drop.wrong_version"] == 1)
        #expect(counts["drop.bad_total_length"] == 1 && counts["drop.oversize"] == 1)
        #expect(counts["dropped"] == 7)
        let (_, replies) = try Frames.read(tunOutput)
        #expect(replies.count == 1)
        let reply = try #require(replies.first).bytes
        #expect(Frames.dotted(reply, 12) == "10.244.1.0")  // from our TUN address
        #expect(Frames.dotted(reply, 16) == "10.244.1.2")
        #expect(reply[20] == 3 && reply[21] == 0)
        #expect(Array(reply[28...]) == Array(noRoute.prefix(28)))
    }

    @Test func udpDropsWhenTheTTLWouldReachZero() throws {
        let input = Fixture.temporaryPath("inner.pcap")
        try Frames.write(
            [Frames.innerUDP(source: "10.244.1.2", destination: "10.244.2.2", ttl: 1)],
            to: input,
            linkType: .raw
        )
        let (result, datagrams) = try encap(input, backend: "udp", routes: "bed-routes-udp.json")
        #expect(datagrams.isEmpty)
        #expect(result.counts["drop.ttl_expired"] == 1)
    }
}
