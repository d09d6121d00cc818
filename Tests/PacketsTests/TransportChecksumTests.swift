import TestSupport
import TestThreads
import Testing

@testable import Packets

@Suite(.computeLane) struct TransportChecksumTests {
    let buffer = TestBuffer()

    func tcpSegment(_ payload: [UInt8], checksum: UInt16 = 0) -> [UInt8] {
        // Ports 40000 → 5201, seq, ack, data offset 5, flags ACK|PSH, window, checksum, urgent.
        [
            0x9C, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xFF, 0xFF,
            UInt8(checksum >> 8), UInt8(checksum & 0xFF), 0, 0,
        ] + payload
    }

    @Test func tcpMatchesReference() {
        var random = SplitMix64(seed: 793)
        for _ in 0..<500 {
            let source = random.bytes(4)
            let destination = random.bytes(4)
            let payload = (0..<Int.random(in: 0...1500, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            let segment = tcpSegment(payload, checksum: UInt16.random(in: 0...0xFFFF, using: &random))
            var zeroed = segment
            zeroed[16] = 0
            zeroed[17] = 0
            let expected = referenceChecksum(
                pseudoHeader(
                    source: source,
                    destination: destination,
                    protocol: 6,
                    length: segment.count
                ) + zeroed
            )
            let packet = buffer.packet(
                makeIPv4(source: source, destination: destination, protocol: 6, payload: segment)
            )
            #expect(TransportChecksum.compute(packet) == expected)
            #expect(TransportChecksum.store(packet))
            #expect(be16(packet.bytes, 20 + 16) == expected)
            #expect(TransportChecksum.isValid(packet))
            packet[packet.length - 1 - Int.random(in: 0..<segment.count - 18, using: &random)] ^= 0x01
            #expect(!TransportChecksum.isValid(packet))
        }
    }

    @Test func udpMatchesReference() {
        let source: [UInt8] = [10, 244, 1, 5]
        let destination: [UInt8] = [10, 244, 2, 9]
        var random = SplitMix64(seed: 768)
        for _ in 0..<300 {
            let payload = (0..<Int.random(in: 0...1500, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            let segment = makeUDP(
                source: source,
                destination: destination,
                sourcePort: 53,
                destinationPort: 33333,
                payload: payload
            )
            let packet = buffer.packet(
                makeIPv4(
                    source: source,
                    destination: destination,
                    protocol: 17,
                    options: [1, 1, 1, 1],
                    payload: segment
                )
            )
            #expect(TransportChecksum.compute(packet) == be16(segment, 6))
            #expect(TransportChecksum.isValid(packet))
        }
    }

    @Test func udpZeroMeansNone() {
        var segment = makeUDP(
            source: [1, 1, 1, 1],
            destination: [2, 2, 2, 2],
            sourcePort: 1,
            destinationPort: 2,
            payload: [1, 2, 3]
        )
        let correct = be16(segment, 6)
        segment[6] = 0
        segment[7] = 0
        let packet = buffer.packet(makeIPv4(source: [1, 1, 1, 1], destination: [2, 2, 2, 2], payload: segment))
        #expect(TransportChecksum.isValid(packet))
        #expect(TransportChecksum.compute(packet) == correct)
        #expect(packet[26] == 0)  // compute leaves the packet alone
    }

    @Test func ignoresPaddingPastTotalLength() {
        let segment = makeUDP(
            source: [1, 1, 1, 1],
            destination: [2, 2, 2, 2],
            sourcePort: 1,
            destinationPort: 2,
            payload: [1, 2, 3]
        )
        let packet = buffer.packet(
            makeIPv4(source: [1, 1, 1, 1], destination: [2, 2, 2, 2], payload: segment) + [9, 9, 9]
        )
        #expect(TransportChecksum.isValid(packet))
    }

    @Test func refusesWhatCannotBeChecked() {
        let segment = tcpSegment([1, 2, 3])
        #expect(TransportChecksum.compute(buffer.packet(makeIPv4(protocol: 1, payload: segment))) == nil)
        #expect(
            TransportChecksum.compute(buffer.packet(makeIPv4(protocol: 6, flagsAndOffset: 0x2000, payload: segment)))
                == nil
        )
        #expect(
            TransportChecksum.compute(buffer.packet(makeIPv4(protocol: 6, flagsAndOffset: 0x0010, payload: segment)))
                == nil
        )
        #expect(TransportChecksum.compute(buffer.packet(makeIPv4(protocol: 6, payload: Array(segment[0..<17])))) == nil)
        #expect(
            TransportChecksum.compute(buffer.packet(makeIPv4(protocol: 17, payload: [0, 1, 0, 2, 0, 8, 0]))) == nil
        )
        #expect(
            TransportChecksum.compute(buffer.packet(makeIPv4(protocol: 6, payload: segment, totalLength: 100))) == nil
        )
        #expect(!TransportChecksum.isValid(buffer.packet(makeIPv4(protocol: 1, payload: segment))))
        #expect(!TransportChecksum.store(buffer.packet(makeIPv4(protocol: 1, payload: segment))))
    }
}
