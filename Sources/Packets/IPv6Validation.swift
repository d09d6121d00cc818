/// Checks on an IPv6 packet before anything reads its fields.
public enum IPv6: IPVersion {
    @inlinable public static var etherType: UInt16 { EtherType.ipv6 }

    /// Why the packet cannot be read as IPv6, or nil when its fixed header is sound. Checked in
    /// this order: 40 bytes present, version 6, payload length inside the buffer. Extension headers
    /// are not looked into: the packet is forwarded with them as it came. A payload length of 0
    /// with a hop-by-hop header would be a jumbogram (RFC 2675), which no link Weft runs on
    /// carries; such a packet is read as its 40 bytes.
    @inlinable
    public static func validate(_ packet: PacketBuffer) -> DropReason? {
        guard packet.length >= IPv6Header.length else { return .truncated }
        guard packet[0] >> 4 == 6 else { return .wrongVersion }
        guard IPv6Header.length + Int(packet.load16(4)) <= packet.length else { return .badPayloadLength }
        return nil
    }

    /// Drops bytes past the payload length (Ethernet pads short frames to 60 bytes).
    /// The packet must have passed `validate`.
    @inlinable
    public static func trim(_ packet: inout PacketBuffer) {
        packet.length = IPv6Header.length + Int(packet.load16(4))
    }

    /// Decrements the hop limit, or returns `.hopLimitExpired` without touching the packet when
    /// it would reach 0 (RFC 8200 §3: a router discards such a packet and may send ICMPv6 Time
    /// Exceeded, `ICMPv6Error.Kind.hopLimitExceeded`). IPv6 has no header checksum, and the hop
    /// limit is not in the pseudo-header, so nothing else changes.
    @inlinable
    public static func decrementHopLimit(_ packet: PacketBuffer) -> DropReason? {
        guard packet.length >= IPv6Header.length else { return .truncated }
        let hopLimit = packet[7]
        guard hopLimit > 1 else { return .hopLimitExpired }
        packet[7] = hopLimit - 1
        return nil
    }

    /// Where the upper-layer header starts and which protocol it is, walking the extension headers
    /// RFC 8200 §4 defines (hop-by-hop, routing, destination options: 8 + 8·n bytes; fragment: 8;
    /// authentication: 8 + 4·n). Nil when the chain runs past `length`, ends in ESP or "no next
    /// header", or meets one Weft cannot step over. `fragmentOffset` is the fragment header's
    /// offset field (0 without one): past the first fragment the upper-layer header is elsewhere.
    /// Only the drop and error paths walk the chain; forwarding never needs to.
    public static func upperLayer(
        _ bytes: UnsafeRawPointer,
        length: Int
    )
        -> (offset: Int, protocol: UInt8, fragmentOffset: UInt16)?
    {
        guard length >= IPv6Header.length else { return nil }
        var next = bytes.load(fromByteOffset: 6, as: UInt8.self)
        var offset = IPv6Header.length
        var fragmentOffset: UInt16 = 0
        // Each step consumes at least 8 bytes, so the loop ends.
        while IPv6NextHeader.isExtensionHeader(next) {
            guard offset + 8 <= length else { return nil }
            let headerLength: Int
            switch next {
            case IPv6NextHeader.hopByHop, IPv6NextHeader.routing, IPv6NextHeader.destinationOptions:
                headerLength = 8 + 8 * Int(bytes.load(fromByteOffset: offset + 1, as: UInt8.self))
            case IPv6NextHeader.fragment:
                headerLength = 8
                fragmentOffset =
                    UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self)) >> 3
            case IPv6NextHeader.authentication:
                headerLength = 8 + 4 * Int(bytes.load(fromByteOffset: offset + 1, as: UInt8.self))
            default:
                return nil  // ESP encrypts what follows; the others are not walked.
            }
            next = bytes.load(fromByteOffset: offset, as: UInt8.self)
            offset += headerLength
        }
        guard next != IPv6NextHeader.noNextHeader, offset <= length else { return nil }
        return (offset, next, fragmentOffset)
    }
}
