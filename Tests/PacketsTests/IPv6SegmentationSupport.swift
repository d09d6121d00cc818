import Packets
import TestSupport

/// IPv6 packet building and checking for the segmentation and coalescing tests, written
/// independently of the code under test, as `GSOTest` is for IPv4.
extension GSOTest {
    static let sourceV6 = v6(0xfc00, 0, 0, 1, 0, 0, 0, 2)
    static let destinationV6 = v6(0xfc00, 0, 0, 2, 0, 0, 0, 3)

    /// IPv6 pseudo-header words (RFC 8200 §8.1): both addresses, the 32-bit length, the next header.
    static func pseudoHeader6(_ packet: [UInt8], nextHeader: UInt8, length: Int) -> UInt64 {
        var sum: UInt64 = 0
        for offset in stride(from: 8, to: 40, by: 2) { sum += UInt64(be16(packet, offset)) }
        return sum + UInt64(length >> 16) + UInt64(length & 0xFFFF) + UInt64(nextHeader)
    }

    /// The TCP or UDP checksum right behind the fixed header verifies.
    static func transportChecksumValid6(_ packet: [UInt8]) -> Bool {
        let end = 40 + Int(be16(packet, 4))
        return slowSum(packet[40..<end], initial: pseudoHeader6(packet, nextHeader: packet[6], length: end - 40))
            == 0xFFFF
    }

    /// Stores a fresh transport checksum (IPv6 has no header checksum).
    static func fillChecksum6(_ packet: inout [UInt8]) {
        let end = 40 + Int(be16(packet, 4))
        let field = 40 + (packet[6] == 6 ? 16 : 6)
        put16(&packet, field, 0)
        var checksum = ~slowSum(
            packet[40..<end],
            initial: pseudoHeader6(packet, nextHeader: packet[6], length: end - 40)
        )
        if packet[6] == 17 && checksum == 0 { checksum = 0xFFFF }
        put16(&packet, field, checksum)
    }

    /// The TCP or UDP checksum field as Linux leaves it for CHECKSUM_PARTIAL over IPv6.
    static func partialChecksum6(_ packet: [UInt8]) -> UInt16 {
        slowSum([], initial: pseudoHeader6(packet, nextHeader: packet[6], length: Int(be16(packet, 4))))
    }

    static func fixedHeader6(
        payloadLength: Int,
        nextHeader: UInt8,
        hopLimit: UInt8 = 64,
        trafficClass: UInt8 = 0,
        flowLabel: UInt32 = 0x1_2345,
        source: [UInt8] = sourceV6,
        destination: [UInt8] = destinationV6
    ) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 8)
        put32(&header, 0, 6 << 28 | UInt32(trafficClass) << 20 | flowLabel)
        put16(&header, 4, UInt16(payloadLength))
        header[6] = nextHeader
        header[7] = hopLimit
        return header + source + destination
    }

    struct TCP6Spec {
        var source = GSOTest.sourceV6
        var destination = GSOTest.destinationV6
        var sourcePort: UInt16 = 40_000
        var destinationPort: UInt16 = 5201
        var sequence: UInt32 = 1000
        var acknowledgment: UInt32 = 0x7777_0000
        var flags: UInt8 = GSOTest.ack
        var window: UInt16 = 502
        var trafficClass: UInt8 = 0
        var flowLabel: UInt32 = 0x1_2345
        var hopLimit: UInt8 = 64
        var tcpOptions: [UInt8] = GSOTest.timestampOption()
        var payload: [UInt8] = []

        var headersLength: Int { 60 + tcpOptions.count }

        func build() -> [UInt8] {
            let tcpLength = 20 + tcpOptions.count
            var tcp = [UInt8](repeating: 0, count: 20)
            put16(&tcp, 0, sourcePort)
            put16(&tcp, 2, destinationPort)
            put32(&tcp, 4, sequence)
            put32(&tcp, 8, acknowledgment)
            tcp[12] = UInt8(tcpLength / 4) << 4
            tcp[13] = flags
            put16(&tcp, 14, window)
            var packet =
                fixedHeader6(
                    payloadLength: tcpLength + payload.count,
                    nextHeader: 6,
                    hopLimit: hopLimit,
                    trafficClass: trafficClass,
                    flowLabel: flowLabel,
                    source: source,
                    destination: destination
                )
                + tcp + tcpOptions + payload
            fillChecksum6(&packet)
            return packet
        }
    }

    /// An IPv6 UDP datagram with a valid checksum.
    static func udp6Packet(payload: [UInt8], sourcePort: UInt16 = 53, flowLabel: UInt32 = 0x1_2345) -> [UInt8] {
        var udp = [UInt8](repeating: 0, count: 8)
        put16(&udp, 0, sourcePort)
        put16(&udp, 2, 5353)
        put16(&udp, 4, UInt16(8 + payload.count))
        var packet =
            fixedHeader6(payloadLength: 8 + payload.count, nextHeader: 17, flowLabel: flowLabel) + udp + payload
        fillChecksum6(&packet)
        return packet
    }

    /// The virtio header Linux puts on a TSO6 super-packet from a local socket.
    static func tso6Header(for packet: [UInt8], mss: Int, ecn: Bool = false) -> VirtioNetHeader {
        VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: VirtioNetHeader.GSOType.tcpV6.withECN(ecn),
            headerLength: UInt16(40 + Int(packet[52] >> 4) * 4),
            gsoSize: UInt16(mss),
            checksumStart: 40,
            checksumOffset: 16
        )
    }

    /// The virtio header of a USO super-packet over IPv6.
    static func uso6Header(gsoSize: Int) -> VirtioNetHeader {
        VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: .udpL4,
            headerLength: 48,
            gsoSize: UInt16(gsoSize),
            checksumStart: 40,
            checksumOffset: 6
        )
    }
}
