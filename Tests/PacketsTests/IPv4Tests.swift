import Addressing
import TestSupport
import Testing

@testable import Packets

@Suite struct IPv4Tests {
    let buffer = TestBuffer()

    @Test func readsKnownHeader() {
        // A captured header (Wikipedia's IPv4 checksum example): 192.168.0.1 → 192.168.0.199, UDP.
        let packet = buffer.packet(
            hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7") + Array(repeating: 0, count: 95)
        )
        #expect(IPv4.validate(packet) == nil)
        let header = IPv4Header(packet)
        #expect(header.version == 4)
        #expect(header.headerLength == 20)
        #expect(header.totalLength == 0x73)
        #expect(header.identification == 0)
        #expect(header.flags == 0b010)
        #expect(header.dontFragment && !header.moreFragments)
        #expect(header.fragmentOffset == 0)
        #expect(!header.isFragment && header.isFirstFragment)
        #expect(header.ttl == 0x40)
        #expect(header.protocol == IPProtocol.udp)
        #expect(header.checksum == 0xb861)
        #expect(header.computedChecksum == 0xb861)
        #expect(header.hasValidChecksum)
        #expect(header.source == IPv4Address(192, 168, 0, 1))
        #expect(header.destination == IPv4Address(192, 168, 0, 199))
    }

    @Test func storesChecksum() {
        let packet = buffer.packet(
            hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7") + Array(repeating: 0, count: 95)
        )
        let header = IPv4Header(packet)
        #expect(!header.hasValidChecksum)
        #expect(header.computedChecksum == 0xb861)
        #expect(header.checksum == 0)  // computing does not write
        header.storeChecksum()
        #expect(packet[10] == 0xb8 && packet[11] == 0x61)
        #expect(header.hasValidChecksum)
    }

    @Test func checksumCoversOptions() {
        var random = SplitMix64(seed: 5)
        for _ in 0..<300 {
            let options = (0..<(4 * Int.random(in: 0...10, using: &random))).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            let bytes = makeIPv4(
                ttl: UInt8.random(in: 0...255, using: &random),
                identification: UInt16.random(in: 0...0xFFFF, using: &random),
                options: options
            )
            let packet = buffer.packet(bytes)
            let header = IPv4Header(packet)
            #expect(header.headerLength == 20 + options.count)
            #expect(header.hasValidChecksum)
            #expect(header.computedChecksum == be16(bytes, 10))
            packet[12] ^= 0x40
            #expect(!header.hasValidChecksum)
        }
    }

    @Test func writesFields() {
        let packet = buffer.packet(makeIPv4())
        let header = IPv4Header(packet)
        header.source = IPv4Address(1, 2, 3, 4)
        header.destination = IPv4Address(5, 6, 7, 8)
        header.ttl = 9
        header.protocol = 6
        header.identification = 0xABCD
        header.totalLength = 40
        #expect(
            Array(packet.bytes[0..<20]) == [0x45, 0, 0, 40, 0xAB, 0xCD, 0x40, 0, 9, 6] + Array(packet.bytes[10..<12])
                + [1, 2, 3, 4, 5, 6, 7, 8]
        )
    }

    @Test(arguments: [
        (UInt16(0x0000), false, true), (0x4000, false, true), (0x2000, true, true),
        (0x2001, true, false), (0x0001, true, false), (0x1FFF, true, false), (0x8000, false, true),
    ])
    func fragmentBits(bits: UInt16, isFragment: Bool, isFirst: Bool) {
        let header = IPv4Header(buffer.packet(makeIPv4(flagsAndOffset: bits)))
        #expect(header.isFragment == isFragment)
        #expect(header.isFirstFragment == isFirst)
        #expect(header.fragmentOffset == bits & 0x1FFF)
        #expect(header.moreFragments == (bits & 0x2000 != 0))
    }

    // MARK: validate, every path

    @Test func validateAcceptsSoundPackets() {
        #expect(IPv4.validate(buffer.packet(makeIPv4())) == nil)
        #expect(IPv4.validate(buffer.packet(makeIPv4(payload: []))) == nil)
        #expect(IPv4.validate(buffer.packet(makeIPv4(options: Array(repeating: 1, count: 40), payload: []))) == nil)
    }

    @Test func validateTruncated() {
        for length in 0..<20 {
            #expect(IPv4.validate(buffer.packet(Array(makeIPv4()[0..<length]))) == .truncated)
        }
    }

    @Test func validateWrongVersion() {
        for version: UInt8 in [0, 5, 6, 15] {
            var bytes = makeIPv4()
            bytes[0] = version << 4 | 5
            #expect(IPv4.validate(buffer.packet(bytes)) == .wrongVersion)
        }
    }

    @Test func validateBadIHL() {
        for ihl: UInt8 in 0...4 {
            var bytes = makeIPv4()
            bytes[0] = 0x40 | ihl
            #expect(IPv4.validate(buffer.packet(bytes)) == .badIHL)
        }
        // IHL 15 claims 60 bytes of header but only 40 are there.
        var bytes = makeIPv4(payload: Array(repeating: 0, count: 20))
        bytes[0] = 0x4F
        #expect(IPv4.validate(buffer.packet(bytes)) == .badIHL)
    }

    @Test func validateBadTotalLength() {
        #expect(IPv4.validate(buffer.packet(makeIPv4(totalLength: 19))) == .badTotalLength)
        #expect(IPv4.validate(buffer.packet(makeIPv4(totalLength: 0))) == .badTotalLength)
        #expect(IPv4.validate(buffer.packet(makeIPv4(options: [1, 1, 1, 1], totalLength: 23))) == .badTotalLength)
        #expect(IPv4.validate(buffer.packet(makeIPv4(payload: Array(0..<10), totalLength: 31))) == .badTotalLength)
        #expect(IPv4.validate(buffer.packet(makeIPv4(payload: Array(0..<10), totalLength: 30))) == nil)
    }

    @Test func validateDoesNotCheckTheChecksum() {
        var bytes = makeIPv4()
        bytes[10] ^= 0xFF
        #expect(IPv4.validate(buffer.packet(bytes)) == nil)
        #expect(!IPv4Header(buffer.packet(bytes)).hasValidChecksum)
    }

    @Test func trimsEthernetPadding() {
        // A 28-byte ICMP echo padded to Ethernet's 46-byte minimum payload.
        let inner = makeIPv4(protocol: 1, payload: Array(repeating: 8, count: 8))
        var packet = buffer.packet(inner + Array(repeating: 0, count: 18))
        #expect(IPv4.validateAndTrim(&packet) == nil)
        #expect(packet.length == 28)
        #expect(packet.bytes == inner)
    }

    @Test func validateAndTrimLeavesBadPacketAlone() {
        var packet = buffer.packet(makeIPv4(totalLength: 100))
        let length = packet.length
        #expect(IPv4.validateAndTrim(&packet) == .badTotalLength)
        #expect(packet.length == length)
    }
}
