import Addressing

/// The vxlan backend's encapsulation (RFC 7348), as the kernel's vxlan device frames it for
/// flannel: an 8-byte VXLAN header, then an inner Ethernet header, then the inner IPv4 packet.
/// The outer IPv4/UDP headers are the UDP socket's business.
public enum VXLAN {
    public static let headerLength = 8
    /// Bytes prepended to the inner IPv4 packet in the buffer: VXLAN header + inner Ethernet.
    public static let overhead = headerLength + Ethernet.headerLength
    /// The kernel's vxlan port, which flannel gets by configuring Port 0.
    public static let defaultPort: UInt16 = 8472
    /// The I flag: the VNI is valid. Other flag bits (G for group policy) are ignored on receipt.
    public static let validVNIFlag: UInt8 = 0x08

    /// Prepends the VXLAN header and the inner Ethernet header (destination = the peer's VtepMAC,
    /// source = ours, `etherType` IPv4 unless told IPv6) in place; false if the headroom is short.
    @inlinable
    public static func encapsulate(
        _ packet: inout PacketBuffer,
        vni: UInt32,
        source: MACAddress,
        destination: MACAddress,
        etherType: UInt16 = EtherType.ipv4
    ) -> Bool {
        guard packet.prepend(overhead) else { return false }
        packet.store32(UInt32(validVNIFlag) << 24, at: 0)
        packet.store32((vni & 0xFF_FFFF) << 8, at: 4)
        packet.storeMAC(destination, at: headerLength)
        packet.storeMAC(source, at: headerLength + 6)
        packet.store16(etherType, at: headerLength + 12)
        return true
    }

    /// Strips the VXLAN and inner Ethernet headers, leaving the inner IPv4 packet trimmed to its
    /// total length; or the reason to drop, with the packet left as it came. Accepts what the kernel
    /// device flannel configures accepts: our VNI, and a frame for our VtepMAC or broadcast.
    @inlinable
    public static func decapsulate(_ packet: inout PacketBuffer, vni: UInt32, localMAC: MACAddress) -> DropReason? {
        decapsulate(&packet, vni: vni, localMAC: localMAC, carrying: IPv4.self)
    }

    /// `decapsulate` for a frame carrying IPv6 (EtherType 0x86DD): the inner IPv6 packet, trimmed
    /// to its payload length, or the reason to drop (`.notIPv4`: neither family).
    @inlinable
    public static func decapsulateIPv6(_ packet: inout PacketBuffer, vni: UInt32, localMAC: MACAddress) -> DropReason? {
        decapsulate(&packet, vni: vni, localMAC: localMAC, carrying: IPv6.self)
    }

    /// Both: the frame's EtherType must be `Family`'s and the inner packet must pass its checks.
    @inlinable @inline(__always)
    static func decapsulate<Family: IPVersion>(
        _ packet: inout PacketBuffer,
        vni: UInt32,
        localMAC: MACAddress,
        carrying family: Family.Type
    ) -> DropReason? {
        if let reason = checkHeaders(packet, vni: vni, localMAC: localMAC) { return reason }
        // ARP (0x0806) lands here too. flannel's permanent neighbour entries mean none should
        // cross the tunnel; answering ARP for our subnet address is future work.
        guard packet.load16(headerLength + 12) == Family.etherType else { return .notIPv4 }
        var inner = packet
        inner.consume(overhead)
        if let reason = Family.validateAndTrim(&inner) { return reason }
        packet = inner
        return nil
    }

    /// The VXLAN header and inner Ethernet destination, as the kernel device checks them.
    @inlinable
    static func checkHeaders(_ packet: PacketBuffer, vni: UInt32, localMAC: MACAddress) -> DropReason? {
        guard packet.length >= overhead else { return .truncated }
        guard packet[0] & validVNIFlag != 0 else { return .vxlanFlagClear }
        // The low byte of the second word is reserved; ignore it as the kernel does.
        guard packet.load32(4) >> 8 == vni & 0xFF_FFFF else { return .wrongVNI }
        let destination = packet.loadMAC(headerLength)
        guard destination == localMAC || destination == .broadcast else { return .notOurMAC }
        return nil
    }
}
