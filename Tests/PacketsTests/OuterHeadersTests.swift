import Addressing
import Testing

@testable import Packets

@Suite struct OuterHeadersTests {
    let buffer = TestBuffer(capacity: 80_000)
    let source: [UInt8] = [198, 18, 0, 1]
    let destination: [UInt8] = [198, 18, 0, 2]
    let payload: [UInt8] = [0x08, 0, 0, 0, 0, 0, 1, 0] + Array(repeating: 0xA5, count: 14) + makeIPv4()

    /// The outer IPv4/UDP datagram written out by hand.
    func expectedDatagram(checksum: Bool = true, payload: [UInt8]? = nil) -> [UInt8] {
        let payload = payload ?? self.payload
        var udp = makeUDP(
            source: source,
            destination: destination,
            sourcePort: 45678,
            destinationPort: 8472,
            payload: payload
        )
        if !checksum {
            udp[6] = 0
            udp[7] = 0
        }
        return makeIPv4(
            source: source,
            destination: destination,
            protocol: 17,
            ttl: 64,
            identification: 0xBEEF,
            flagsAndOffset: 0,
            payload: udp
        )
    }

    func prepended(checksum: Bool = true) -> PacketBuffer {
        var packet = buffer.packet(payload, headroom: 100)
        #expect(
            OuterHeaders.prepend(
                &packet,
                source: IPv4Address(198, 18, 0, 1),
                destination: IPv4Address(198, 18, 0, 2),
                sourcePort: 45678,
                destinationPort: 8472,
                identification: 0xBEEF,
                udpChecksum: checksum
            )
        )
        return packet
    }

    @Test func prependWritesTheKernelsHeaders() {
        #expect(prepended().bytes == expectedDatagram())
        #expect(prepended(checksum: false).bytes == expectedDatagram(checksum: false))
        #expect(prepended().headroom == 72)
    }

    @Test func prependRefusesShortHeadroomAndOversize() {
        var short = buffer.packet(payload, headroom: 27)
        #expect(
            !OuterHeaders.prepend(
                &short,
                source: .any,
                destination: .any,
                sourcePort: 1,
                destinationPort: 2,
                identification: 0
            )
        )
        #expect(short.headroom == 27)
        var large = buffer.packet(Array(repeating: 0, count: 65_508), headroom: 28)
        #expect(
            !OuterHeaders.prepend(
                &large,
                source: .any,
                destination: .any,
                sourcePort: 1,
                destinationPort: 2,
                identification: 0
            )
        )
        var largest = buffer.packet(Array(repeating: 0, count: 65_507), headroom: 28)
        #expect(
            OuterHeaders.prepend(
                &largest,
                source: .any,
                destination: .any,
                sourcePort: 1,
                destinationPort: 2,
                identification: 0
            )
        )
        #expect(largest.length == 65_535)
    }

    @Test func zeroChecksumIsSentAsAllOnes() {
        // Pick the last two payload bytes so the UDP sum comes out zero, then expect 0xFFFF on the wire.
        var body: [UInt8] = [1, 2, 3, 4, 0, 0]
        let udpLength = 8 + body.count
        let partial = ~referenceChecksum(
            pseudoHeader(source: source, destination: destination, protocol: 17, length: udpLength)
                + [0xB2, 0x6E, 0x21, 0x18, 0, UInt8(udpLength), 0, 0] + body
        )
        // Adding ~partial makes the sum 0xFFFF, whose checksum is 0.
        body[4] = UInt8(~partial >> 8)
        body[5] = UInt8(~partial & 0xFF)
        var packet = buffer.packet(body, headroom: 100)
        #expect(
            OuterHeaders.prepend(
                &packet,
                source: IPv4Address(198, 18, 0, 1),
                destination: IPv4Address(198, 18, 0, 2),
                sourcePort: 45678,
                destinationPort: 8472,
                identification: 0
            )
        )
        #expect(be16(packet.bytes, 26) == 0xFFFF)
        guard case .datagram(let datagram) = OuterDatagram.parse(packet, link: .raw) else {
            Issue.record()
            return
        }
        #expect(datagram.hasChecksum && datagram.hasValidChecksum)
    }

    // MARK: parse, every link layer

    static let ethernetHeader: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
    static let vlanHeader: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00]
    // SLL: packet type 0 (to us), ARPHRD_ETHER 1, address length 6, address padded to 8, protocol.
    static let sllHeader: [UInt8] = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00]
    // SLL2: protocol, reserved, interface index 3, ARPHRD_ETHER, packet type 4 (outgoing), length 6, address.
    static let sll2Header: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0]
    // SLL carrying a VLAN tag as libpcap reinserts it.
    static let sllVLANHeader: [UInt8] = [0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00]

    @Test(arguments: [
        (LinkLayer.raw, [UInt8]()), (.ethernet, ethernetHeader), (.ethernet, vlanHeader),
        (.linuxCooked, sllHeader), (.linuxCooked2, sll2Header), (.linuxCooked, sllVLANHeader),
    ])
    func parsesBackWhatWasWritten(link: LinkLayer, header: [UInt8]) throws {
        let frame = buffer.packet(header + prepended().bytes)
        guard case .datagram(let datagram) = OuterDatagram.parse(frame, link: link) else {
            Issue.record("dropped: \(OuterDatagram.parse(frame, link: link))")
            return
        }
        #expect(datagram.source == IPv4Address(198, 18, 0, 1))
        #expect(datagram.destination == IPv4Address(198, 18, 0, 2))
        #expect(datagram.sourcePort == 45678 && datagram.destinationPort == 8472)
        #expect(datagram.udpLength == 8 + payload.count)
        #expect(datagram.payload.bytes == payload)
        #expect(datagram.udp.length == 8 + payload.count)
        #expect(datagram.ip.bytes == expectedDatagram())
        #expect(datagram.hasChecksum && datagram.hasValidChecksum)
        #expect(IPv4Header(datagram.ip).hasValidChecksum)
    }

    @Test func ethernetPrependParsesBack() {
        var packet = prepended()
        #expect(
            Ethernet.prepend(
                &packet,
                destination: MACAddress("aa:bb:cc:dd:ee:ff")!,
                source: MACAddress("02:00:00:00:00:01")!,
                etherType: EtherType.ipv4
            )
        )
        #expect(Array(packet.bytes[0..<14]) == [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00])
        #expect(packet.loadMAC(0) == MACAddress("aa:bb:cc:dd:ee:ff")!)
        guard case .datagram(let datagram) = OuterDatagram.parse(packet, link: .ethernet) else {
            Issue.record()
            return
        }
        #expect(datagram.payload.bytes == payload)
        var cramped = buffer.packet([1], headroom: 13)
        #expect(!Ethernet.prepend(&cramped, destination: .broadcast, source: .broadcast, etherType: EtherType.arp))
    }

    @Test func trimsEthernetPadding() {
        let small = expectedDatagram(payload: [1, 2, 3, 4])  // 32 bytes: padded to 46 on the wire
        let frame = buffer.packet(Self.ethernetHeader + small + Array(repeating: 0, count: 14))
        guard case .datagram(let datagram) = OuterDatagram.parse(frame, link: .ethernet) else {
            Issue.record()
            return
        }
        #expect(datagram.payload.bytes == [1, 2, 3, 4])
        #expect(datagram.hasValidChecksum)
    }

    @Test func checksumVerification() {
        var bytes = expectedDatagram()
        bytes[bytes.count - 1] ^= 0x10
        guard case .datagram(let corrupted) = OuterDatagram.parse(buffer.packet(bytes), link: .raw) else {
            Issue.record()
            return
        }
        #expect(corrupted.hasChecksum && !corrupted.hasValidChecksum)
        guard
            case .datagram(let none) = OuterDatagram.parse(buffer.packet(expectedDatagram(checksum: false)), link: .raw)
        else {
            Issue.record()
            return
        }
        #expect(!none.hasChecksum && none.hasValidChecksum)
    }

    func drop(_ bytes: [UInt8], _ link: LinkLayer, _ lengths: OuterDatagram.Lengths = .strict) -> DropReason? {
        if case .drop(let reason) = OuterDatagram.parse(buffer.packet(bytes), link: link, lengths: lengths) {
            return reason
        }
        return nil
    }

    @Test func dropsTruncatedLinkHeaders() {
        #expect(drop(Array(Self.ethernetHeader[0..<13]), .ethernet) == .truncated)
        #expect(drop(Array(Self.vlanHeader[0..<17]), .ethernet) == .truncated)
        #expect(drop(Array(Self.sllHeader[0..<15]), .linuxCooked) == .truncated)
        #expect(drop(Array(Self.sll2Header[0..<19]), .linuxCooked2) == .truncated)
        #expect(drop([], .raw) == .truncated)
        #expect(drop(Self.ethernetHeader, .ethernet) == .truncated)
    }

    @Test func dropsOtherTraffic() {
        var arp = Self.ethernetHeader
        arp[13] = 0x06
        #expect(drop(arp + Array(repeating: 0, count: 28), .ethernet) == .notOurTraffic)
        var ipv6 = Self.sll2Header
        ipv6[0] = 0x86
        ipv6[1] = 0xDD
        #expect(drop(ipv6 + Array(repeating: 0x60, count: 60), .linuxCooked2) == .notOurTraffic)
        #expect(drop([0x60] + Array(repeating: 0, count: 60), .raw) == .notOurTraffic)
        #expect(drop(makeIPv4(protocol: 6), .raw) == .notOurTraffic)
        #expect(drop(makeIPv4(protocol: 1), .raw) == .notOurTraffic)
        let udp = makeUDP(
            source: source,
            destination: destination,
            sourcePort: 1,
            destinationPort: 8472,
            payload: Array(0..<20)
        )
        #expect(drop(makeIPv4(flagsAndOffset: 0x2000, payload: udp), .raw) == .notOurTraffic)
        #expect(drop(makeIPv4(flagsAndOffset: 0x0003, payload: udp), .raw) == .notOurTraffic)
    }

    @Test func dropsMalformedIPv4() {
        #expect(drop(Array(expectedDatagram()[0..<19]), .raw) == .truncated)
        var version = expectedDatagram()
        version[0] = 0x55
        #expect(drop(version, .raw) == .wrongVersion)
        var ihl = expectedDatagram()
        ihl[0] = 0x42
        #expect(drop(ihl, .raw) == .badIHL)
        #expect(drop(Array(expectedDatagram().dropLast()), .raw) == .badTotalLength)
    }

    @Test func dropsMalformedUDP() {
        #expect(drop(makeIPv4(payload: [0, 1, 0, 2, 0, 8, 0]), .raw) == .truncated)
        #expect(drop(makeIPv4(payload: [0, 1, 0, 2, 0, 7, 0, 0]), .raw) == .badTotalLength)
        #expect(drop(makeIPv4(payload: [0, 1, 0, 2, 0, 13, 0, 0, 1, 2, 3, 4]), .raw) == .truncated)
        // A UDP length shorter than the IP payload bounds the payload.
        let frame = buffer.packet(makeIPv4(payload: [0, 1, 0, 2, 0, 10, 0, 0, 1, 2, 3, 4]))
        guard case .datagram(let datagram) = OuterDatagram.parse(frame, link: .raw) else {
            Issue.record()
            return
        }
        #expect(datagram.payload.bytes == [1, 2])
    }

    @Test func superFramesRunToTheCapturedEnd() {
        // A GSO super-frame past 64 KB: IPv4 total length 0, UDP length wrapped.
        let big = Array(repeating: UInt8(0x42), count: 70_000)
        var bytes = makeIPv4(
            payload: [0x12, 0x34, 0x21, 0x18] + [UInt8((70_008 >> 8) & 0xFF), UInt8(70_008 & 0xFF), 0, 0] + big,
            totalLength: 0
        )
        bytes[10] = 0
        bytes[11] = 0
        #expect(drop(Self.ethernetHeader + bytes, .ethernet) == .badTotalLength)
        let frame = buffer.packet(Self.ethernetHeader + bytes, headroom: 0)
        guard case .datagram(let datagram) = OuterDatagram.parse(frame, link: .ethernet, lengths: .superFrames) else {
            Issue.record()
            return
        }
        #expect(datagram.payload.length == 70_000)
        #expect(datagram.udpLength == 70_008 & 0xFFFF)
        #expect(datagram.sourcePort == 0x1234 && datagram.destinationPort == 8472)
        #expect(datagram.ip.length == 70_028)
    }

    @Test func superFramesKeepOtherChecks() {
        // Within 64 KB the total length still bounds the datagram, and a UDP length that disagrees is tolerated.
        let udp: [UInt8] = [0, 1, 0x21, 0x18, 0xFF, 0xFF, 0, 0] + Array(repeating: 7, count: 3000)
        let frame = buffer.packet(makeIPv4(payload: udp) + [0, 0, 0, 0])
        guard case .datagram(let datagram) = OuterDatagram.parse(frame, link: .raw, lengths: .superFrames) else {
            Issue.record()
            return
        }
        #expect(datagram.payload.length == 3000)
        #expect(datagram.udpLength == 0xFFFF)
        #expect(drop(makeIPv4(payload: udp, totalLength: 4000), .raw, .superFrames) == .badTotalLength)
        #expect(drop(makeIPv4(payload: [0, 1, 0, 2, 0, 8, 0]), .raw, .superFrames) == .truncated)
        #expect(drop(makeIPv4(protocol: 6, payload: udp, totalLength: 0), .raw, .superFrames) == .notOurTraffic)
    }

    @Test func linkTypes() {
        #expect(LinkLayer(linkType: 1) == .ethernet)
        #expect(LinkLayer(linkType: 101) == .raw)
        #expect(LinkLayer(linkType: 12) == .raw)
        #expect(LinkLayer(linkType: 228) == .raw)
        #expect(LinkLayer(linkType: 113) == .linuxCooked)
        #expect(LinkLayer(linkType: 276) == .linuxCooked2)
        #expect(LinkLayer(linkType: 0) == nil)
        #expect(LinkLayer(linkType: 127) == nil)
    }
}
