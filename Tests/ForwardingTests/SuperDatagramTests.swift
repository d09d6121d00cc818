import Addressing
import Forwarding
import Packets
import Routes
import Testing

@Suite struct SuperDatagramTests {
    let source = IPv4Address(10, 244, 1, 2)
    let destination = IPv4Address(10, 244, 2, 2)

    private func segment(_ payloadLength: Int, identification: UInt16 = 1) -> [UInt8] {
        Reference.vxlanFrame(
            vni: 1,
            destination: Bed.macB,
            source: Bed.macA,
            inner: Reference.udpPacket(
                from: source,
                to: destination,
                payload: [UInt8](repeating: 7, count: payloadLength),
                identification: identification
            )
        )
    }

    private func length(_ bytes: [UInt8], _ backend: Backend = .vxlan) -> Int {
        let buffer = TestBuffer(bytes)
        return SuperDatagram.segmentLength(buffer.packet, backend: backend)
    }

    @Test func splitsAtTheFirstSegmentsLength() {
        let first = segment(1000, identification: 1)
        let payload = first + segment(1000, identification: 2) + segment(300, identification: 3)
        #expect(length(payload) == first.count)
        #expect(first.count == 8 + 14 + 20 + 8 + 1000)
    }

    @Test func aSingleDatagramIsNotSplit() {
        let single = segment(500)
        #expect(length(single) == single.count)
    }

    @Test func paddingAfterAShortInnerPacketIsNotASegment() {
        let padded = segment(0) + [UInt8](repeating: 0, count: 18)
        #expect(length(padded) == padded.count)
    }

    @Test func aMalformedFirstSegmentIsOneDatagram() {
        var bad = segment(100) + segment(100)
        bad[22] = 0x44  // inner IHL 4
        #expect(length(bad) == bad.count)
        var otherVNI = segment(100) + segment(100)
        let second = segment(100).count
        otherVNI[second + 6] = 9
        #expect(length(otherVNI) == otherVNI.count)
    }

    /// An IPv6/UDP packet (fc00::…): only the lengths matter here.
    private func ipv6Packet(_ payloadLength: Int) -> [UInt8] {
        let udpLength = 8 + payloadLength
        let source: [UInt8] = [0xFC, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 7) + [2]
        let destination: [UInt8] = [0xFC, 0, 0, 0, 0, 0, 0, 2] + [UInt8](repeating: 0, count: 7) + [2]
        return [0x60, 0, 0, 0, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 17, 64] + source + destination
            + [0x9C, 0x40, 0x00, 0x09, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
            + [UInt8](repeating: 6, count: payloadLength)
    }

    private func ipv6Segment(_ payloadLength: Int, etherType: UInt16 = 0x86DD) -> [UInt8] {
        Reference.vxlanFrame(
            vni: 1,
            destination: Bed.macB,
            source: Bed.macA,
            inner: ipv6Packet(payloadLength),
            etherType: etherType
        )
    }

    @Test func innerIPv6SplitsAtTheFirstSegmentsPayloadLength() {
        let first = ipv6Segment(1000)
        #expect(first.count == 8 + 14 + 40 + 8 + 1000)
        #expect(length(first + ipv6Segment(1000) + ipv6Segment(200)) == first.count)
        let bare = ipv6Packet(600)
        #expect(length(bare + bare + ipv6Packet(3), .udp) == bare.count)
        #expect(length(ipv6Segment(500)) == ipv6Segment(500).count)
    }

    @Test func innerIPv6UnderTheIPv4EtherTypeIsOneDatagram() {
        let mislabelled = ipv6Segment(100, etherType: 0x0800) + ipv6Segment(100, etherType: 0x0800)
        #expect(length(mislabelled) == mislabelled.count)
        // A truncated IPv6 header after the first segment is not another start.
        let first = ipv6Segment(100)
        let cut = first + ipv6Segment(100).prefix(8 + 14 + 30)
        #expect(length(cut) == cut.count)
    }

    @Test func udpBackendSegmentsAreBareIPv4() {
        let first = Reference.udpPacket(from: source, to: destination, payload: [UInt8](repeating: 1, count: 600))
        let last = Reference.udpPacket(from: source, to: destination, payload: [1, 2, 3])
        #expect(length(first + first + last, .udp) == first.count)
        #expect(length(first, .udp) == first.count)
    }
}
