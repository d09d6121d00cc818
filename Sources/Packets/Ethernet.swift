import Addressing

/// EtherType values Weft reads.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    /// 802.1Q VLAN tag: 2 bytes of tag control, then the real EtherType.
    public static let vlan: UInt16 = 0x8100
    public static let ipv6: UInt16 = 0x86DD
}

/// Ethernet II header: destination MAC, source MAC, EtherType.
public enum Ethernet {
    public static let headerLength = 14

    /// Writes an Ethernet header in front of the packet; false if the headroom is short.
    @inlinable
    public static func prepend(
        _ packet: inout PacketBuffer,
        destination: MACAddress,
        source: MACAddress,
        etherType: UInt16
    ) -> Bool {
        guard packet.prepend(headerLength) else { return false }
        packet.storeMAC(destination, at: 0)
        packet.storeMAC(source, at: 6)
        packet.store16(etherType, at: 12)
        return true
    }
}

extension PacketBuffer {
    /// The 6-byte MAC address at `offset` from the packet start.
    @inlinable public func loadMAC(_ offset: Int) -> MACAddress {
        MACAddress(UInt64(load16(offset)) << 32 | UInt64(load32(offset + 2)))
    }

    @inlinable public func storeMAC(_ mac: MACAddress, at offset: Int) {
        store16(UInt16(truncatingIfNeeded: mac.value >> 32), at: offset)
        store32(UInt32(truncatingIfNeeded: mac.value), at: offset + 2)
    }
}
