import Addressing
import TestSupport
import TestThreads
import Testing

@testable import Packets

@Suite(.computeLane) struct IPv6Tests {
    let buffer = TestBuffer()

    // MARK: the header view

    @Test func readsEveryField() {
        let bytes = makeIPv6(
            nextHeader: 6,
            hopLimit: 17,
            trafficClass: 0xB9,
            flowLabel: 0xA_BCDE,
            payload: Array(0..<24)
        )
        let header = IPv6Header(buffer.packet(bytes))
        #expect(header.version == 6)
        #expect(header.trafficClass == 0xB9)
        #expect(header.flowLabel == 0xA_BCDE)
        #expect(header.payloadLength == 24)
        #expect(header.totalLength == 64)
        #expect(header.nextHeader == 6)
        #expect(header.hopLimit == 17)
        #expect(header.source == IPv6Address("fc00:0:0:1::5"))
        #expect(header.destination == IPv6Address("fc00:0:0:9::9"))
    }

    @Test func writesFieldsInPlace() {
        let packet = buffer.packet(makeIPv6(trafficClass: 0x12, flowLabel: 0x3_4567))
        let header = IPv6Header(packet)
        header.payloadLength = 0x1234
        header.hopLimit = 3
        header.nextHeader = 58
        header.source = IPv6Address("2001:db8::1")!
        header.destination = IPv6Address("2001:db8:ffff::abcd")!
        let bytes = packet.bytes
        #expect(Array(bytes[0..<8]) == [0x61, 0x23, 0x45, 0x67, 0x12, 0x34, 58, 3], "version, class and label kept")
        #expect(Array(bytes[8..<24]) == v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        #expect(Array(bytes[24..<40]) == v6(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0xabcd))
    }

    @Test func initializeWritesAWholeHeader() {
        let packet = buffer.packet(Array(repeating: 0xEE, count: 40))
        IPv6Header(packet).initialize(
            payloadLength: 300,
            nextHeader: 58,
            hopLimit: 64,
            source: IPv6Address("fc00::1")!,
            destination: IPv6Address("fc00::2")!,
            trafficClass: 0xFF
        )
        #expect(
            packet.bytes == [0x6F, 0xF0, 0, 0, 0x01, 0x2C, 58, 64] + v6(0xfc00, 0, 0, 0, 0, 0, 0, 1)
                + v6(0xfc00, 0, 0, 0, 0, 0, 0, 2)
        )
    }

    // MARK: validate, every path

    @Test func validateAcceptsSoundPackets() {
        #expect(IPv6.validate(buffer.packet(makeIPv6())) == nil)
        #expect(IPv6.validate(buffer.packet(makeIPv6(nextHeader: 59, payload: []))) == nil)
    }

    @Test func validateTruncated() {
        for length in 0..<40 {
            #expect(IPv6.validate(buffer.packet(Array(makeIPv6()[0..<length]))) == .truncated)
        }
    }

    @Test func validateWrongVersion() {
        for version: UInt8 in [0, 4, 5, 7, 15] {
            var bytes = makeIPv6()
            bytes[0] = version << 4 | (bytes[0] & 0x0F)
            #expect(IPv6.validate(buffer.packet(bytes)) == .wrongVersion)
        }
    }

    @Test func validateBadPayloadLength() {
        #expect(IPv6.validate(buffer.packet(makeIPv6(payload: Array(0..<10), payloadLength: 11))) == .badPayloadLength)
        #expect(IPv6.validate(buffer.packet(makeIPv6(payload: [], payloadLength: 0xFFFF))) == .badPayloadLength)
        #expect(IPv6.validate(buffer.packet(makeIPv6(payload: Array(0..<10), payloadLength: 10))) == nil)
        #expect(IPv6.validate(buffer.packet(makeIPv6(payload: Array(0..<10), payloadLength: 9))) == nil)
    }

    @Test func trimsEthernetPadding() {
        // An 8-byte ICMPv6 echo padded to 60 bytes.
        let inner = makeIPv6(nextHeader: 58, payload: [128, 0, 0, 0, 0, 1, 0, 1])
        var packet = buffer.packet(inner + Array(repeating: 0, count: 12))
        #expect(IPv6.validateAndTrim(&packet) == nil)
        #expect(packet.length == 48)
        #expect(packet.bytes == inner)
    }

    @Test func validateAndTrimLeavesBadPacketAlone() {
        var packet = buffer.packet(makeIPv6(payloadLength: 100))
        let length = packet.length
        #expect(IPv6.validateAndTrim(&packet) == .badPayloadLength)
        #expect(packet.length == length)
    }

    // MARK: hop limit

    @Test func decrementsHopLimitAndNothingElse() {
        for hopLimit: UInt8 in [2, 64, 255] {
            let bytes = makeIPv6(hopLimit: hopLimit)
            let packet = buffer.packet(bytes)
            #expect(IPv6.decrementHopLimit(packet) == nil)
            var expected = bytes
            expected[7] = hopLimit - 1
            #expect(packet.bytes == expected)
        }
    }

    @Test func expiredHopLimitLeavesPacketAlone() {
        for hopLimit: UInt8 in [0, 1] {
            let bytes = makeIPv6(hopLimit: hopLimit)
            let packet = buffer.packet(bytes)
            #expect(IPv6.decrementHopLimit(packet) == .hopLimitExpired)
            #expect(packet.bytes == bytes)
        }
        #expect(IPv6.decrementHopLimit(buffer.packet(Array(makeIPv6()[0..<39]))) == .truncated)
    }

    // MARK: pseudo-header

    @Test func pseudoHeaderSumMatchesTheBytes() {
        var random = SplitMix64(seed: 8200)
        for _ in 0..<500 {
            let source = random.bytes(16)
            let destination = random.bytes(16)
            let nextHeader = UInt8.random(in: 0...255, using: &random)
            // Upper-layer lengths past 16 bits exist (jumbograms): the field is 32 bits wide.
            let length = Int.random(in: 0...0x1FF_FFFF, using: &random)
            let packet = buffer.packet(makeIPv6(source: source, destination: destination, payload: []))
            let sum = IPv6Header(packet).pseudoHeaderSum(nextHeader: nextHeader, length: length)
            let expected = referenceChecksum(
                pseudoHeaderV6(source: source, destination: destination, nextHeader: nextHeader, length: length)
            )
            #expect(UInt16(bigEndian: InternetChecksum.finalize(sum)) == expected)
        }
    }

    // MARK: extension headers

    @Test func findsTheUpperLayerBehindExtensionHeaders() {
        let udp = makeUDPv6(
            source: v6(0xfc00, 0, 0, 1, 0, 0, 0, 5),
            destination: v6(0xfc00, 0, 0, 9, 0, 0, 0, 9),
            sourcePort: 1,
            destinationPort: 2,
            payload: [1, 2, 3]
        )
        // Hop-by-hop (8 bytes) → destination options (16) → fragment (8, offset 0, M set) → UDP.
        let hopByHop: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]
        let destinationOptions: [UInt8] = [44, 1] + Array(repeating: 0, count: 14)
        let firstFragment: [UInt8] = [17, 0, 0x00, 0x01, 0, 0, 0, 7]
        let bytes = makeIPv6(nextHeader: 0, payload: hopByHop + destinationOptions + firstFragment + udp)
        let found = bytes.withUnsafeBytes { IPv6.upperLayer($0.baseAddress!, length: $0.count) }
        #expect(found?.offset == 72 && found?.protocol == 17 && found?.fragmentOffset == 0)

        let laterFragment: [UInt8] = [17, 0, 0x05, 0x00, 0, 0, 0, 7]  // offset 160 (units of 8)
        let later = makeIPv6(nextHeader: 44, payload: laterFragment + [9, 9, 9, 9])
        let fragment = later.withUnsafeBytes { IPv6.upperLayer($0.baseAddress!, length: $0.count) }
        #expect(fragment?.offset == 48 && fragment?.fragmentOffset == 160)

        // Authentication header: 4-byte units, plus 2.
        let authentication: [UInt8] = [6, 2, 0, 0] + Array(repeating: 0, count: 12)
        let withAH = makeIPv6(nextHeader: 51, payload: authentication + Array(repeating: 0, count: 20))
        let ah = withAH.withUnsafeBytes { IPv6.upperLayer($0.baseAddress!, length: $0.count) }
        #expect(ah?.offset == 56 && ah?.protocol == 6)
    }

    @Test func anUnwalkableChainHasNoUpperLayer() {
        // A hop-by-hop header claiming 16 bytes in a packet with 8.
        let short = makeIPv6(nextHeader: 0, payload: [17, 1, 0, 0, 0, 0, 0, 0])
        #expect(short.withUnsafeBytes { IPv6.upperLayer($0.baseAddress!, length: $0.count) } == nil)
        let esp = makeIPv6(nextHeader: 50, payload: Array(repeating: 0, count: 16))
        #expect(esp.withUnsafeBytes { IPv6.upperLayer($0.baseAddress!, length: $0.count) } == nil)
        let none = makeIPv6(nextHeader: 59, payload: [])
        #expect(none.withUnsafeBytes { IPv6.upperLayer($0.baseAddress!, length: $0.count) } == nil)
    }

    // MARK: transport checksums over IPv6

    @Test func tcpAndUDPChecksumsOverIPv6MatchReference() {
        var random = SplitMix64(seed: 86)
        for round in 0..<300 {
            let source = random.bytes(16)
            let destination = random.bytes(16)
            let payload = (0..<Int.random(in: 0...1500, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            let isTCP = round % 2 == 0
            var segment: [UInt8] =
                isTCP
                ? [0x9C, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xFF, 0xFF, 0x12, 0x34, 0, 0] + payload
                : [
                    0x03, 0xE8, 0x07, 0xD0, UInt8((8 + payload.count) >> 8), UInt8((8 + payload.count) & 0xFF), 0x56,
                    0x78,
                ] + payload
            let field = isTCP ? 16 : 6
            segment[field] = 0
            segment[field + 1] = 0
            var expected = referenceChecksum(
                pseudoHeaderV6(
                    source: source,
                    destination: destination,
                    nextHeader: isTCP ? 6 : 17,
                    length: segment.count
                ) + segment
            )
            if !isTCP && expected == 0 { expected = 0xFFFF }
            segment[field] = 0xAB
            let packet = buffer.packet(
                makeIPv6(source: source, destination: destination, nextHeader: isTCP ? 6 : 17, payload: segment)
            )
            #expect(TransportChecksum.compute(packet) == expected)
            #expect(TransportChecksum.store(packet))
            #expect(be16(packet.bytes, 40 + field) == expected)
            #expect(TransportChecksum.isValid(packet))
            packet[40 + Int.random(in: 0..<segment.count, using: &random)] ^= 0x10
            #expect(!TransportChecksum.isValid(packet))
        }
    }

    @Test func aZeroUDPChecksumIsInvalidOverIPv6() {
        var segment = makeUDPv6(
            source: v6(0xfc00, 0, 0, 1, 0, 0, 0, 5),
            destination: v6(0xfc00, 0, 0, 9, 0, 0, 0, 9),
            sourcePort: 53,
            destinationPort: 5353,
            payload: [1, 2, 3, 4]
        )
        #expect(TransportChecksum.isValid(buffer.packet(makeIPv6(nextHeader: 17, payload: segment))))
        segment[6] = 0
        segment[7] = 0
        #expect(!TransportChecksum.isValid(buffer.packet(makeIPv6(nextHeader: 17, payload: segment))))
    }

    @Test func transportBehindExtensionHeadersIsNotChecksummed() {
        let udp = makeUDPv6(
            source: v6(0xfc00, 0, 0, 1, 0, 0, 0, 5),
            destination: v6(0xfc00, 0, 0, 9, 0, 0, 0, 9),
            sourcePort: 53,
            destinationPort: 5353,
            payload: [1, 2, 3, 4]
        )
        let packet = buffer.packet(makeIPv6(nextHeader: 60, payload: [17, 0, 1, 4, 0, 0, 0, 0] + udp))
        #expect(TransportChecksum.compute(packet) == nil)
        #expect(!TransportChecksum.isValid(packet))
    }

    @Test func newDropReasonsHaveMetricNames() {
        #expect(DropReason.badPayloadLength.description == "bad_payload_length")
        #expect(DropReason.hopLimitExpired.description == "hop_limit_expired")
        #expect(DropReason.ipv6ExtensionHeaders.description == "ipv6_extension_headers")
        #expect(Set(DropReason.allCases.map(\.description)).count == DropReason.allCases.count)
    }
}
