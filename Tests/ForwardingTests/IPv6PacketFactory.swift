import Addressing

/// IPv6 test packets, byte by byte, with checksums from `Reference.checksum`.
extension Reference {
    static func bytes(_ address: IPv6Address) -> [UInt8] {
        (0..<16).map { UInt8(truncatingIfNeeded: address.value >> (120 - 8 * UInt128($0))) }
    }

    static func ipv6Address(_ bytes: [UInt8], _ at: Int) -> IPv6Address {
        IPv6Address(bytes[at..<(at + 16)].reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
    }

    /// The sum an upper-layer checksum covers in front of its packet (RFC 8200 §8.1).
    static func ipv6PseudoHeader(source: [UInt8], destination: [UInt8], nextHeader: UInt8, length: Int) -> [UInt8] {
        source + destination + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, nextHeader]
    }

    /// An IPv6/UDP packet with a valid UDP checksum.
    static func udp6Packet(
        from source: IPv6Address,
        to destination: IPv6Address,
        hopLimit: UInt8 = 64,
        payload: [UInt8] = Array("weft".utf8)
    ) -> [UInt8] {
        let udpLength = 8 + payload.count
        var udp: [UInt8] = [0x9C, 0x40, 0x00, 0x09, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0] + payload
        let pseudo = ipv6PseudoHeader(
            source: bytes(source),
            destination: bytes(destination),
            nextHeader: 17,
            length: udpLength
        )
        let value = checksum(pseudo + udp)
        udp[6] = UInt8(value >> 8)
        udp[7] = UInt8(value & 0xFF)
        let header: [UInt8] = [0x60, 0, 0, 0, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 17, hopLimit]
        return header + bytes(source) + bytes(destination) + udp
    }
}
