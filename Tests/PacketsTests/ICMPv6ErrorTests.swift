import Addressing
import Testing

@testable import Packets

@Suite struct ICMPv6ErrorTests {
    let buffer = TestBuffer()
    let replyBuffer = TestBuffer()
    let tunAddress = IPv6Address("fc00:0:0:1::")!
    static let tunBytes = v6(0xfc00, 0, 0, 1, 0, 0, 0, 0)

    /// Checks the reply against RFC 4443's layout written out field by field, the checksum by the
    /// reference over the pseudo-header.
    func expectReply(
        _ reply: [UInt8],
        to offender: [UInt8],
        type: UInt8,
        code: UInt8,
        rest: [UInt8] = [0, 0, 0, 0],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let offenderLength = 40 + Int(be16(offender, 4))
        let quoted = min(offenderLength, 1232)
        #expect(reply.count == 48 + quoted, sourceLocation: sourceLocation)
        guard reply.count == 48 + quoted else { return }
        #expect(
            Array(reply[0..<8]) == [0x60, 0, 0, 0, UInt8((8 + quoted) >> 8), UInt8((8 + quoted) & 0xFF), 58, 64],
            sourceLocation: sourceLocation
        )
        #expect(Array(reply[8..<24]) == Self.tunBytes, sourceLocation: sourceLocation)
        #expect(
            Array(reply[24..<40]) == Array(offender[8..<24]),
            "to the offender's source",
            sourceLocation: sourceLocation
        )
        #expect(reply[40] == type && reply[41] == code, sourceLocation: sourceLocation)
        #expect(Array(reply[44..<48]) == rest, sourceLocation: sourceLocation)
        let pseudo = pseudoHeaderV6(
            source: Self.tunBytes,
            destination: Array(offender[8..<24]),
            nextHeader: 58,
            length: 8 + quoted
        )
        #expect(referenceChecksum(pseudo + Array(reply[40...])) == 0, "ICMPv6 checksum", sourceLocation: sourceLocation)
        #expect(Array(reply[48...]) == Array(offender[0..<quoted]), sourceLocation: sourceLocation)
    }

    func reply(_ kind: ICMPv6Error.Kind, to offender: [UInt8]) -> [UInt8]? {
        var reply = replyBuffer.packet([], headroom: 0)
        guard let length = ICMPv6Error.write(kind, offender: buffer.packet(offender), source: tunAddress, into: &reply)
        else { return nil }
        #expect(length == reply.length)
        return reply.bytes
    }

    @Test func noRouteForUDP() throws {
        let offender = makeIPv6(payload: Array(1...40))
        expectReply(try #require(reply(.noRoute, to: offender)), to: offender, type: 1, code: 0)
    }

    @Test func timeExceeded() throws {
        let offender = makeIPv6(nextHeader: 6, hopLimit: 1, payload: Array(repeating: 0x11, count: 60))
        expectReply(try #require(reply(.hopLimitExceeded, to: offender)), to: offender, type: 3, code: 0)
    }

    @Test func packetTooBigCarriesTheMTUAndQuotesUpTo1280Bytes() throws {
        // 1500-byte offender: the reply is cut at the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
        let offender = makeIPv6(nextHeader: 6, payload: Array(repeating: 0xAB, count: 1460))
        let bytes = try #require(reply(.packetTooBig(mtu: 1430), to: offender))
        #expect(bytes.count == 1280)
        expectReply(bytes, to: offender, type: 2, code: 0, rest: [0, 0, 0x05, 0x96])
        // One that fits is quoted whole.
        let small = makeIPv6(nextHeader: 6, payload: Array(repeating: 0xCD, count: 1000))
        expectReply(
            try #require(reply(.packetTooBig(mtu: 1000), to: small)),
            to: small,
            type: 2,
            code: 0,
            rest: [0, 0, 0x03, 0xE8]
        )
        // The boundary: a 1232-byte offender exactly fills 1280.
        let exact = makeIPv6(nextHeader: 17, payload: Array(repeating: 1, count: 1192))
        #expect(try #require(reply(.packetTooBig(mtu: 1280), to: exact)).count == 1280)
    }

    @Test func knownVectorBytes() throws {
        // Offender fc00:0:0:1::5 → fc00:0:0:9::9, no next header, hop limit 1, empty payload.
        let offender = hex("6000 0000 0000 3b01") + v6(0xfc00, 0, 0, 1, 0, 0, 0, 5) + v6(0xfc00, 0, 0, 9, 0, 0, 0, 9)
        let bytes = try #require(reply(.hopLimitExceeded, to: offender))
        #expect(Array(bytes[0..<8]) == hex("6000 0000 0030 3a40"))
        // Words: pseudo fc00+0001 (from) + fc00+0001+0005 (to) + 0030 + 003a, type/code 0300,
        // quoted 6000+3b01 + fc00+0001+0005 + fc00+0009+0009 = 0x4_8E8A → 0x8E8E; ~ is 0x7171.
        #expect(Array(bytes[40..<48]) == hex("0300 7171 0000 0000"))
        #expect(Array(bytes[48...]) == offender)
    }

    @Test func quotesOnlyUpToThePayloadLength() throws {
        let offender = makeIPv6(payload: [1, 2, 3, 4])
        let bytes = try #require(reply(.noRoute, to: offender + Array(repeating: 0x55, count: 20)))
        expectReply(bytes, to: offender, type: 1, code: 0)
    }

    @Test func answersInformationalICMPv6AndFragments() {
        #expect(
            reply(.noRoute, to: makeIPv6(nextHeader: 58, payload: [128, 0, 0, 0, 0, 1, 0, 1])) != nil,
            "echo request"
        )
        #expect(
            reply(.noRoute, to: makeIPv6(nextHeader: 58, payload: [129, 0, 0, 0, 0, 1, 0, 1])) != nil,
            "echo reply"
        )
        // A later fragment of an ICMPv6 message: its type is not in this packet; Linux answers it.
        #expect(
            reply(.noRoute, to: makeIPv6(nextHeader: 44, payload: [58, 0, 0x05, 0x00, 0, 0, 0, 7, 1, 2, 3, 4])) != nil
        )
        // A first fragment of an echo request.
        #expect(
            reply(.noRoute, to: makeIPv6(nextHeader: 44, payload: [58, 0, 0x00, 0x01, 0, 0, 0, 7, 128, 0, 0, 0])) != nil
        )
    }

    @Test(arguments: [UInt8(1), 2, 3, 4, 100, 127, 137])
    func refusesICMPv6ErrorsAndRedirects(type: UInt8) {
        #expect(reply(.noRoute, to: makeIPv6(nextHeader: 58, payload: [type, 0, 0, 0, 0, 0, 0, 0])) == nil)
        // Also behind extension headers.
        #expect(
            reply(
                .packetTooBig(mtu: 1400),
                to: makeIPv6(nextHeader: 60, payload: [58, 0, 1, 4, 0, 0, 0, 0, type, 0, 0, 0])
            ) == nil
        )
    }

    @Test func refusesICMPv6WithoutType() {
        #expect(reply(.noRoute, to: makeIPv6(nextHeader: 58, payload: [])) == nil)
    }

    @Test func refusesMalformed() {
        #expect(reply(.noRoute, to: Array(makeIPv6()[0..<39])) == nil)
        #expect(reply(.noRoute, to: makeIPv6(payloadLength: 200)) == nil)
        var ipv4 = makeIPv6()
        ipv4[0] = 0x45
        #expect(reply(.noRoute, to: ipv4) == nil)
    }

    @Test(arguments: [v6(0, 0, 0, 0, 0, 0, 0, 0), v6(0, 0, 0, 0, 0, 0, 0, 1), v6(0xff02, 0, 0, 0, 0, 0, 0, 1)])
    func refusesSourcesThatAreNotOneHost(source: [UInt8]) {
        #expect(reply(.noRoute, to: makeIPv6(source: source)) == nil)
        #expect(reply(.packetTooBig(mtu: 1400), to: makeIPv6(source: source)) == nil)
    }

    @Test func multicastDestinationsGetOnlyPacketTooBig() {
        let offender = makeIPv6(destination: v6(0xff0e, 0, 0, 0, 0, 0, 0, 0x101))
        #expect(reply(.noRoute, to: offender) == nil)
        #expect(reply(.hopLimitExceeded, to: offender) == nil)
        #expect(reply(.packetTooBig(mtu: 1400), to: offender) != nil, "RFC 4443 §2.4 (e.3)")
    }

    @Test func refusesWhenTheBufferIsTooSmall() {
        let offender = buffer.packet(makeIPv6())  // 72 bytes: a 120-byte reply
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 120, alignment: 8)
        defer { memory.deallocate() }
        #expect(ICMPv6Error.write(.noRoute, offender: offender, source: tunAddress, to: memory, capacity: 119) == nil)
        #expect(ICMPv6Error.write(.noRoute, offender: offender, source: tunAddress, to: memory, capacity: 120) == 120)
    }

    @Test(arguments: [48, 100, 10, 0])
    func replacesInPlace(headroom: Int) throws {
        let offender = makeIPv6(nextHeader: 6, payload: Array(1...100))
        let expected = try #require(reply(.packetTooBig(mtu: 1400), to: offender))
        var packet = buffer.packet(offender, headroom: headroom)
        #expect(ICMPv6Error.replace(&packet, with: .packetTooBig(mtu: 1400), source: tunAddress))
        #expect(packet.bytes == expected)
        #expect(packet.headroom == max(headroom - 48, 0))
    }

    @Test func replacesALargePacketInPlace() throws {
        let offender = makeIPv6(nextHeader: 17, payload: Array(repeating: 7, count: 2000))
        let expected = try #require(reply(.packetTooBig(mtu: 1430), to: offender))
        var packet = buffer.packet(offender, headroom: 64)
        #expect(ICMPv6Error.replace(&packet, with: .packetTooBig(mtu: 1430), source: tunAddress))
        #expect(packet.bytes == expected && packet.length == 1280)
    }

    @Test func replaceLeavesRefusedPacketAlone() {
        let offender = makeIPv6(nextHeader: 58, payload: [3, 0, 0, 0, 0, 0, 0, 0])
        var packet = buffer.packet(offender, headroom: 64)
        #expect(!ICMPv6Error.replace(&packet, with: .noRoute, source: tunAddress))
        #expect(packet.headroom == 64 && packet.bytes == offender)
    }
}
