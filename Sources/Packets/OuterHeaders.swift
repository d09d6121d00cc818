import Addressing

/// The outer IPv4 + UDP headers the kernel's UDP socket adds when the engine sends: written here
/// only to build test traffic and replay captures, and parsed back by `OuterDatagram.parse`.
public enum OuterHeaders {
    public static let udpHeaderLength = 8
    /// Outer IPv4 (no options) + UDP.
    public static let length = IPv4Header.minimumLength + udpHeaderLength
    /// What Linux puts in the outer header by default (net.ipv4.ip_default_ttl).
    public static let ttl: UInt8 = 64

    /// Prepends an outer IPv4 header (IHL 5, TOS 0, DF clear, TTL 64, protocol UDP) and a UDP header
    /// in place, with the UDP checksum computed or, when `udpChecksum` is false, zero ("none",
    /// RFC 768). False when the headroom is short or the datagram would exceed 65,535 bytes.
    public static func prepend(
        _ packet: inout PacketBuffer,
        source: IPv4Address,
        destination: IPv4Address,
        sourcePort: UInt16,
        destinationPort: UInt16,
        identification: UInt16,
        udpChecksum: Bool = true
    ) -> Bool {
        guard packet.length + length <= Int(UInt16.max), packet.prepend(length) else { return false }
        let header = IPv4Header(packet)
        packet[0] = 0x45
        packet[1] = 0
        header.totalLength = packet.length
        header.identification = identification
        packet.store16(0, at: 6)
        header.ttl = ttl
        header.protocol = IPProtocol.udp
        header.source = source
        header.destination = destination
        header.storeChecksum()

        let udp = IPv4Header.minimumLength
        let udpLength = packet.length - udp
        packet.store16(sourcePort, at: udp)
        packet.store16(destinationPort, at: udp + 2)
        packet.store16(UInt16(udpLength), at: udp + 4)
        packet.store16(0, at: udp + 6)
        if udpChecksum {
            let field = udpChecksumField(packet.start + udp, count: udpLength, source: source, destination: destination)
            (packet.start + udp).storeBytes(of: field, toByteOffset: 6, as: UInt16.self)
        }
        return true
    }

    /// The UDP checksum field (memory order) for the `count` bytes of UDP header and payload at
    /// `udp`, whose checksum field is zero. A computed zero is sent as all ones: zero means "none".
    @inlinable
    public static func udpChecksumField(
        _ udp: UnsafeRawPointer,
        count: Int,
        source: IPv4Address,
        destination: IPv4Address
    ) -> UInt16 {
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: source.networkOrder,
            destination: destination.networkOrder,
            protocol: IPProtocol.udp,
            length: count
        )
        let field = InternetChecksum.checksum(udp, count: count, initial: pseudo)
        return field == 0 ? 0xFFFF : field
    }
}
