/// Checks on an IPv4 packet before anything reads its fields.
public enum IPv4: IPVersion {
    @inlinable public static var etherType: UInt16 { EtherType.ipv4 }

    /// Why the packet cannot be read as IPv4, or nil when its header is sound. Checked in this order:
    /// 20 bytes present, version 4, IHL in 5...15 with the header inside the buffer, total length
    /// covering the header and inside the buffer. The header checksum is not verified: the kernel
    /// already did for TUN packets, and `IPv4Header.hasValidChecksum` is there for the others.
    @inlinable
    public static func validate(_ packet: PacketBuffer) -> DropReason? {
        let length = packet.length
        guard length >= IPv4Header.minimumLength else { return .truncated }
        let first = packet[0]
        guard first >> 4 == 4 else { return .wrongVersion }
        let headerLength = Int(first & 0x0F) << 2
        guard headerLength >= IPv4Header.minimumLength, headerLength <= length else { return .badIHL }
        let totalLength = Int(packet.load16(2))
        guard totalLength >= headerLength, totalLength <= length else { return .badTotalLength }
        return nil
    }

    /// Drops bytes past the total length (Ethernet pads short frames to 60 bytes).
    /// The packet must have passed `validate`.
    @inlinable
    public static func trim(_ packet: inout PacketBuffer) {
        packet.length = Int(packet.load16(2))
    }

    /// Decrements the TTL and patches the header checksum incrementally (RFC 1624), or returns
    /// `.ttlExpired` without touching the packet when the TTL would reach 0 — flannel's proxy drops
    /// such a packet silently (no Time Exceeded) and so does Weft.
    @inlinable
    public static func decrementTTL(_ packet: PacketBuffer) -> DropReason? {
        guard packet.length >= IPv4Header.minimumLength else { return .truncated }
        let bytes = packet.start
        let ttl = bytes.load(fromByteOffset: 8, as: UInt8.self)
        guard ttl > 1 else { return .ttlExpired }
        // TTL and protocol share one 16-bit word of the checksum; both words in memory order.
        let old = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
        bytes.storeBytes(of: ttl - 1, toByteOffset: 8, as: UInt8.self)
        let new = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
        let checksum = bytes.loadUnaligned(fromByteOffset: 10, as: UInt16.self)
        bytes.storeBytes(of: InternetChecksum.update(checksum, old: old, new: new), toByteOffset: 10, as: UInt16.self)
        return nil
    }
}
