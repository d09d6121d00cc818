import TestSupport
import TestThreads
import Testing

@testable import Packets

@Suite(.computeLane) struct TTLTests {
    let buffer = TestBuffer()

    /// A header whose checksum is exactly `target`, reached by choosing the identification field.
    func header(checksum target: UInt16, ttl: UInt8, random: inout SplitMix64) -> [UInt8] {
        let options = random.bytes(4 * Int.random(in: 0...10, using: &random))
        var bytes = makeIPv4(
            source: random.bytes(4),
            protocol: UInt8.random(in: 0...255, using: &random),
            ttl: ttl,
            identification: 0,
            flagsAndOffset: UInt16.random(in: 0...0xFFFF, using: &random),
            options: options,
            payload: []
        )
        bytes[10] = 0
        bytes[11] = 0
        // ~checksum is the folded sum; the identification supplies (~target) − sum, one's complement.
        let sum = ~referenceChecksum(bytes)
        var identification = UInt32(~target) + UInt32(~sum)
        identification = (identification & 0xFFFF) + (identification >> 16)
        bytes[4] = UInt8(identification >> 8)
        bytes[5] = UInt8(identification & 0xFF)
        let checksum = referenceChecksum(bytes)
        bytes[10] = UInt8(checksum >> 8)
        bytes[11] = UInt8(checksum & 0xFF)
        return bytes
    }

    func checkDecrement(_ bytes: [UInt8]) {
        let packet = buffer.packet(bytes)
        #expect(IPv4.decrementTTL(packet) == nil)
        var recomputed = packet.bytes
        #expect(recomputed[8] == bytes[8] - 1)
        recomputed[10] = 0
        recomputed[11] = 0
        let expected = referenceChecksum(Array(recomputed[0..<(Int(bytes[0] & 0xF) * 4)]))
        #expect(be16(packet.bytes, 10) == expected, "header \(bytes)")
        #expect(IPv4Header(packet).hasValidChecksum)
        // Nothing else changed.
        #expect(Array(packet.bytes[0..<8]) == Array(bytes[0..<8]))
        #expect(Array(packet.bytes[12...]) == Array(bytes[12...]))
    }

    @Test func randomHeaders() {
        var random = SplitMix64(seed: 1624)
        for _ in 0..<5000 {
            checkDecrement(
                header(
                    checksum: UInt16.random(in: 0...0xFFFE, using: &random),
                    ttl: UInt8.random(in: 2...255, using: &random),
                    random: &random
                )
            )
        }
    }

    @Test func checksumsNearTheEnds() {
        var random = SplitMix64(seed: 7)
        // The decrement adds 0x0100 to the checksum: these cross 0xFFFF/0x0000 both ways.
        let targets = Array(UInt16(0x0000)...0x0101) + Array(UInt16(0xFDFF)...0xFFFE)
        for target in targets {
            let bytes = header(checksum: target, ttl: UInt8.random(in: 2...255, using: &random), random: &random)
            #expect(be16(bytes, 10) == target)
            checkDecrement(bytes)
        }
    }

    @Test func expiresAtOneAndZero() {
        for ttl: UInt8 in [0, 1] {
            let bytes = makeIPv4(ttl: ttl)
            let packet = buffer.packet(bytes)
            #expect(IPv4.decrementTTL(packet) == .ttlExpired)
            #expect(packet.bytes == bytes)
        }
        let packet = buffer.packet(makeIPv4(ttl: 2))
        #expect(IPv4.decrementTTL(packet) == nil)
        #expect(IPv4.decrementTTL(packet) == .ttlExpired)
    }

    @Test func truncated() {
        #expect(IPv4.decrementTTL(buffer.packet(Array(makeIPv4()[0..<19]))) == .truncated)
    }
}
