import Capture
import Foundation

/// Packet building and reading for the replay tests, written independently of Packets: plain byte
/// arrays and a word-by-word reference checksum.
enum Frames {
    static func checksum(_ bytes: some Collection<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var iterator = bytes.makeIterator()
        while let high = iterator.next() {
            sum += UInt32(high) << 8 | UInt32(iterator.next() ?? 0)
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func word(_ bytes: [UInt8], _ at: Int) -> Int { Int(bytes[at]) << 8 | Int(bytes[at + 1]) }

    static func put(_ value: Int, _ bytes: inout [UInt8], at: Int) {
        bytes[at] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[at + 1] = UInt8(truncatingIfNeeded: value)
    }

    static func address(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }

    static func mac(_ text: String) -> [UInt8] { text.split(separator: ":").map { UInt8($0, radix: 16)! } }

    static func dotted(_ bytes: [UInt8], _ at: Int) -> String {
        bytes[at..<at + 4].map(String.init).joined(separator: ".")
    }

    /// An IPv4 header (no options) for `payloadLength` bytes, with a valid checksum.
    static func ipv4Header(
        source: String,
        destination: String,
        protocol proto: UInt8,
        payloadLength: Int,
        ttl: UInt8 = 64,
        identification: Int = 0x1234
    ) -> [UInt8] {
        var header: [UInt8] = [0x45, 0, 0, 0, 0, 0, 0, 0, ttl, proto, 0, 0] + address(source) + address(destination)
        put(20 + payloadLength, &header, at: 2)
        put(identification, &header, at: 4)
        put(Int(checksum(header)), &header, at: 10)
        return header
    }

    /// An inner IPv4/UDP packet with valid checksums.
    static func innerUDP(
        source: String,
        destination: String,
        ttl: UInt8 = 64,
        payload: [UInt8] = Array("weft replay".utf8)
    ) -> [UInt8] {
        var udp: [UInt8] = [0x9C, 0x40, 0, 9, 0, 0, 0, 0] + payload
        put(udp.count, &udp, at: 4)
        let pseudo =
            address(source) + address(destination) + [0, 17] + [UInt8(udp.count >> 8), UInt8(udp.count & 0xFF)]
        put(Int(checksum(pseudo + udp)), &udp, at: 6)
        return ipv4Header(source: source, destination: destination, protocol: 17, payloadLength: udp.count, ttl: ttl)
            + udp
    }

    static func vxlan(
        _ inner: [UInt8],
        vni: UInt32 = 1,
        destinationMAC: String = "aa:bb:cc:dd:ee:02",
        sourceMAC: String = "aa:bb:cc:dd:ee:01",
        flags: UInt8 = 0x08,
        etherType: Int = 0x0800
    ) -> [UInt8] {
        [flags, 0, 0, 0, UInt8(vni >> 16), UInt8((vni >> 8) & 0xFF), UInt8(vni & 0xFF), 0]
            + mac(destinationMAC) + mac(sourceMAC) + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)] + inner
    }

    /// An Ethernet frame holding an outer IPv4/UDP datagram with a valid UDP checksum.
    static func outerFrame(
        _ payload: [UInt8],
        source: String = "198.18.0.1",
        destination: String = "198.18.0.2",
        sourcePort: Int = 40000,
        destinationPort: Int = 8472
    ) -> [UInt8] {
        var udp: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0] + payload
        put(sourcePort, &udp, at: 0)
        put(destinationPort, &udp, at: 2)
        put(udp.count, &udp, at: 4)
        let pseudo = address(source) + address(destination) + [0, 17, UInt8(udp.count >> 8), UInt8(udp.count & 0xFF)]
        put(Int(checksum(pseudo + udp)), &udp, at: 6)
        return mac("02:00:00:00:00:02") + mac("02:00:00:00:00:01") + [0x08, 0x00]
            + ipv4Header(source: source, destination: destination, protocol: 17, payloadLength: udp.count) + udp
    }

    /// The same IPv4 packet with its TTL lowered by `hops`, header checksum recomputed from scratch.
    static func decrementingTTL(_ packet: [UInt8], by hops: UInt8 = 1) -> [UInt8] {
        var result = packet
        result[8] -= hops
        result[10] = 0
        result[11] = 0
        put(Int(checksum(result[0..<Int(result[0] & 0x0F) * 4])), &result, at: 10)
        return result
    }

    static func read(_ path: String) throws -> (LinkType, [CapturedPacket]) {
        var reader = try CaptureReader(path: path)
        return (reader.linkType, try reader.readAll())
    }

    static func write(_ packets: [[UInt8]], to path: String, linkType: LinkType) throws {
        let writer = try CaptureWriter(path: path, linkType: linkType)
        for (index, packet) in packets.enumerated() {
            writer.write(packet, timestamp: CaptureTimestamp(seconds: 1_700_000_000 + Int64(index), nanoseconds: 0))
        }
        try writer.close()
    }
}
