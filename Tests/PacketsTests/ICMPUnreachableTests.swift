import Addressing
import Testing

@testable import Packets

@Suite struct ICMPUnreachableTests {
    let buffer = TestBuffer()
    let replyBuffer = TestBuffer()
    let tunAddress = IPv4Address(10, 244, 1, 0)

    /// Checks the reply against the layout written out field by field, both checksums by the reference.
    func expectReply(_ reply: [UInt8], to offender: [UInt8], code: UInt8, rest: [UInt8] = [0, 0, 0, 0]) {
        let quotedLength = min(Int(offender[0] & 0xF) * 4 + 8, offender.count)
        #expect(reply.count == 28 + quotedLength)
        guard reply.count == 28 + quotedLength else { return }
        let total = reply.count
        #expect(Array(reply[0..<10]) == [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0, 0, 8, 1])
        #expect(Array(reply[12..<16]) == [10, 244, 1, 0])
        #expect(Array(reply[16..<20]) == Array(offender[12..<16]))
        #expect(referenceChecksum(Array(reply[0..<20])) == 0, "IP header checksum")
        #expect(reply[20] == 3 && reply[21] == code)
        #expect(Array(reply[24..<28]) == rest)
        #expect(referenceChecksum(Array(reply[20...])) == 0, "ICMP checksum")
        #expect(Array(reply[28...]) == Array(offender[0..<quotedLength]))
    }

    func reply(_ kind: ICMPUnreachable.Kind, to offender: [UInt8]) -> [UInt8]? {
        var reply = replyBuffer.packet([], headroom: 0)
        guard
            let length = ICMPUnreachable.write(
                kind,
                offender: buffer.packet(offender),
                source: tunAddress,
                into: &reply
            )
        else { return nil }
        #expect(length == reply.length)
        return reply.bytes
    }

    @Test func netUnreachableForUDP() throws {
        let offender = makeIPv4(payload: Array(1...40))
        let bytes = try #require(reply(.netUnreachable, to: offender))
        expectReply(bytes, to: offender, code: 0)
        #expect(bytes.count == 56)
    }

    @Test func fragmentationNeededCarriesMTU() throws {
        let offender = makeIPv4(protocol: 6, payload: Array(repeating: 0xAB, count: 1460))
        let bytes = try #require(reply(.fragmentationNeeded(nextHopMTU: 1450), to: offender))
        expectReply(bytes, to: offender, code: 4, rest: [0, 0, 0x05, 0xAA])
    }

    @Test func knownVectorBytes() throws {
        // Offender 10.244.1.5 → 10.244.9.9, UDP 1000 → 2000, a 4-byte payload.
        let offender = hex("4500 0020 1234 4000 4011 0000 0af4 0105 0af4 0909") + hex("03e8 07d0 000c 0000 dead beef")
        let bytes = try #require(reply(.netUnreachable, to: offender))
        // Length 20+8+28 = 56 = 0x38. Header words: 4500+0038+0801+0af4+0100+0af4+0105 = 0x6526
        // → checksum 0x9AD9.
        #expect(Array(bytes[0..<20]) == hex("4500 0038 0000 0000 0801 9ad9 0af4 0100 0af4 0105"))
        // ICMP words: quoted 4500+0020+1234+4000+4011+0af4+0105+0af4+0909+03e8+07d0+000c = 0x1_031F
        // → 0x0320, + type/code 0300 = 0x0620 → checksum 0xF9DF.
        #expect(Array(bytes[20..<28]) == hex("0300 f9df 0000 0000"))
        #expect(Array(bytes[28...]) == Array(offender[0..<28]))
    }

    @Test func quotesOptionsAndShortPayloads() throws {
        let withOptions = makeIPv4(options: [1, 1, 1, 0, 7, 7, 7, 7], payload: Array(1...20))
        expectReply(try #require(reply(.netUnreachable, to: withOptions)), to: withOptions, code: 0)
        let maximal = makeIPv4(options: Array(repeating: 1, count: 40), payload: Array(1...20))
        let bytes = try #require(reply(.netUnreachable, to: maximal))
        #expect(bytes.count == ICMPUnreachable.maximumLength)
        let short = makeIPv4(payload: [1, 2, 3])
        expectReply(try #require(reply(.netUnreachable, to: short)), to: short, code: 0)
        let empty = makeIPv4(payload: [])
        expectReply(try #require(reply(.netUnreachable, to: empty)), to: empty, code: 0)
    }

    @Test func quotesOnlyUpToTotalLength() throws {
        // Bytes past the total length (padding) are not payload.
        let offender = makeIPv4(payload: [1, 2, 3, 4])
        let bytes = try #require(reply(.netUnreachable, to: offender + Array(repeating: 0x55, count: 20)))
        expectReply(bytes, to: offender, code: 0)
    }

    @Test func answersEchoRequestAndFirstFragment() {
        #expect(reply(.netUnreachable, to: makeIPv4(protocol: 1, payload: [8, 0, 0, 0, 0, 1, 0, 1])) != nil)
        #expect(reply(.netUnreachable, to: makeIPv4(protocol: 1, payload: [0, 0, 0, 0, 0, 1, 0, 1])) != nil)
        #expect(reply(.netUnreachable, to: makeIPv4(flagsAndOffset: 0x2000)) != nil)
    }

    @Test(arguments: [UInt8(3), 4, 5, 11, 12])
    func refusesICMPErrors(type: UInt8) {
        #expect(reply(.netUnreachable, to: makeIPv4(protocol: 1, payload: [type, 0, 0, 0, 0, 0, 0, 0])) == nil)
    }

    @Test func refusesICMPWithoutType() {
        #expect(reply(.netUnreachable, to: makeIPv4(protocol: 1, payload: [])) == nil)
    }

    @Test func refusesNonFirstFragments() {
        #expect(reply(.netUnreachable, to: makeIPv4(flagsAndOffset: 0x0001)) == nil)
        #expect(reply(.netUnreachable, to: makeIPv4(flagsAndOffset: 0x20B9)) == nil)
    }

    @Test func refusesMalformed() {
        var badIHL = makeIPv4()
        badIHL[0] = 0x44
        #expect(reply(.netUnreachable, to: badIHL) == nil)
        var longIHL = makeIPv4(payload: Array(repeating: 0, count: 10))
        longIHL[0] = 0x4F
        #expect(reply(.netUnreachable, to: longIHL) == nil)
        #expect(reply(.netUnreachable, to: Array(makeIPv4()[0..<19])) == nil)
        #expect(reply(.netUnreachable, to: makeIPv4(totalLength: 200)) == nil)
    }

    @Test(arguments: [[UInt8(0), 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 1], [240, 1, 2, 3], [255, 255, 255, 255]])
    func refusesSourcesThatAreNotOneHost(source: [UInt8]) {
        #expect(reply(.netUnreachable, to: makeIPv4(source: source)) == nil)
    }

    @Test func refusesMulticastAndBroadcastDestinations() {
        #expect(reply(.netUnreachable, to: makeIPv4(destination: [239, 1, 1, 1])) == nil)
        #expect(reply(.netUnreachable, to: makeIPv4(destination: [255, 255, 255, 255])) == nil)
    }

    @Test func refusesWhenTheBufferIsTooSmall() {
        let offender = buffer.packet(makeIPv4())
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 56, alignment: 8)
        defer { memory.deallocate() }
        #expect(
            ICMPUnreachable.write(.netUnreachable, offender: offender, source: tunAddress, to: memory, capacity: 55)
                == nil
        )
        #expect(
            ICMPUnreachable.write(.netUnreachable, offender: offender, source: tunAddress, to: memory, capacity: 56)
                == 56
        )
    }

    @Test(arguments: [28, 100, 10, 0])
    func replacesInPlace(headroom: Int) throws {
        let offender = makeIPv4(options: [1, 1, 1, 1], payload: Array(1...100))
        let expected = try #require(reply(.fragmentationNeeded(nextHopMTU: 1400), to: offender))
        var packet = buffer.packet(offender, headroom: headroom)
        #expect(ICMPUnreachable.replace(&packet, with: .fragmentationNeeded(nextHopMTU: 1400), source: tunAddress))
        #expect(packet.bytes == expected)
        #expect(packet.headroom == max(headroom - 28, 0))
    }

    @Test func replaceLeavesRefusedPacketAlone() {
        let offender = makeIPv4(protocol: 1, payload: [11, 0, 0, 0, 0, 0, 0, 0])
        var packet = buffer.packet(offender, headroom: 40)
        #expect(!ICMPUnreachable.replace(&packet, with: .netUnreachable, source: tunAddress))
        #expect(packet.headroom == 40 && packet.bytes == offender)
    }
}
