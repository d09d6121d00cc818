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

    @Test func udpBackendSegmentsAreBareIPv4() {
        let first = Reference.udpPacket(from: source, to: destination, payload: [UInt8](repeating: 1, count: 600))
        let last = Reference.udpPacket(from: source, to: destination, payload: [1, 2, 3])
        #expect(length(first + first + last, .udp) == first.count)
        #expect(length(first, .udp) == first.count)
    }
}
