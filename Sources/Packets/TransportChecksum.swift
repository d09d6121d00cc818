/// TCP and UDP checksums of a whole IPv4 or IPv6 packet (RFC 793, RFC 768, RFC 8200 §8.1:
/// pseudo-header, then the transport header and payload up to the IPv4 total length or the IPv6
/// payload length). An IPv6 packet counts only when TCP or UDP follows the fixed header directly.
public enum TransportChecksum {
    /// Where the checksum field sits in the transport header, for TCP and UDP.
    @inlinable static func fieldOffset(_ proto: UInt8) -> Int? {
        switch proto {
        case IPProtocol.tcp: 16
        case IPProtocol.udp: 6
        default: nil
        }
    }

    /// The transport header and payload of a sound, unfragmented TCP or UDP packet long enough
    /// to hold its checksum field; nil otherwise (a fragment cannot be checked alone).
    @inlinable static func segment(_ packet: PacketBuffer) -> (bytes: UnsafeMutableRawPointer, count: Int, field: Int)?
    {
        if packet.length > 0 && packet[0] >> 4 == 6 {
            guard IPv6.validate(packet) == nil else { return nil }
            let header = IPv6Header(packet)
            guard let field = fieldOffset(header.nextHeader), header.payloadLength >= field + 2 else { return nil }
            return (packet.start + IPv6Header.length, header.payloadLength, field)
        }
        guard IPv4.validate(packet) == nil else { return nil }
        let header = IPv4Header(packet)
        guard !header.isFragment, let field = fieldOffset(header.protocol) else { return nil }
        let count = header.totalLength - header.headerLength
        guard count >= field + 2 else { return nil }
        return (packet.start + header.headerLength, count, field)
    }

    @inlinable static func pseudoHeaderSum(_ packet: PacketBuffer, count: Int) -> InternetChecksum.Sum {
        let bytes = packet.start
        if isIPv6(packet) {
            return IPv6Header(bytes).pseudoHeaderSum(
                nextHeader: bytes.load(fromByteOffset: 6, as: UInt8.self),
                length: count
            )
        }
        return InternetChecksum.pseudoHeaderSum(
            source: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self),
            destination: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self),
            protocol: bytes.load(fromByteOffset: 9, as: UInt8.self),
            length: count
        )
    }

    /// The checksum the TCP or UDP header should carry (wire number), or nil when the packet is
    /// not a sound, unfragmented TCP/UDP packet. A UDP result of 0 is given as 0xFFFF (0 means none).
    @inlinable
    public static func compute(_ packet: PacketBuffer) -> UInt16? {
        guard let segment = segment(packet) else { return nil }
        return compute(packet, segment)
    }

    @inlinable
    static func compute(
        _ packet: PacketBuffer,
        _ segment: (bytes: UnsafeMutableRawPointer, count: Int, field: Int)
    ) -> UInt16 {
        let (bytes, count, field) = segment
        let current = bytes.loadUnaligned(fromByteOffset: field, as: UInt16.self)
        // Cancel the field's current content instead of zeroing it: the packet stays untouched.
        let sum =
            InternetChecksum.sum(bytes, count: count, initial: pseudoHeaderSum(packet, count: count))
            &+ InternetChecksum.Sum(~current)
        let value = UInt16(bigEndian: InternetChecksum.finalize(sum))
        return value == 0 && field == 6 ? 0xFFFF : value
    }

    /// Computes the checksum and writes it into the TCP or UDP header; false when `compute` gives nil.
    @inlinable @discardableResult
    public static func store(_ packet: PacketBuffer) -> Bool {
        guard let segment = segment(packet) else { return false }
        let value = compute(packet, segment)
        segment.bytes.storeBytes(of: value.bigEndian, toByteOffset: segment.field, as: UInt16.self)
        return true
    }

    /// The TCP or UDP checksum verifies; over IPv4 a UDP checksum of 0 (none sent) counts as valid,
    /// over IPv6 it does not (RFC 8200 §8.1: the checksum is mandatory).
    /// False when the packet is not a sound, unfragmented TCP/UDP packet.
    @inlinable
    public static func isValid(_ packet: PacketBuffer) -> Bool {
        guard let (bytes, count, field) = segment(packet) else { return false }
        if field == 6 && bytes.loadUnaligned(fromByteOffset: field, as: UInt16.self) == 0 { return !isIPv6(packet) }
        return InternetChecksum.isValid(bytes, count: count, initial: pseudoHeaderSum(packet, count: count))
    }

    /// The packet is read as IPv6 (segment() has already checked that it is sound).
    @inlinable static func isIPv6(_ packet: PacketBuffer) -> Bool { packet[0] >> 4 == 6 }
}
