extension VXLAN {
    /// Where outer source ports come from: Linux's default ephemeral range, which the kernel
    /// vxlan device flannel creates ("srcport 0 0") spreads flows over.
    public static let sourcePortRange: ClosedRange<UInt16> = 32768...60999

    /// The outer UDP source port for an inner IPv4 (or IPv6) packet: a hash of its flow (addresses,
    /// protocol, and TCP/UDP ports), so one flow keeps one port and the underlay's ECMP and the
    /// receiver's RSS spread flows without reordering any. Ports are left out for fragments, as
    /// the kernel's flow dissector does, so every fragment of a datagram takes the same path.
    /// Never fails: a malformed packet hashes whatever fields it has.
    @inlinable
    public static func sourcePort(forInner packet: PacketBuffer) -> UInt16 {
        // Scale the hash into the range (multiply-shift, as the kernel's udp_flow_src_port).
        let span = UInt64(sourcePortRange.upperBound - sourcePortRange.lowerBound) + 1
        return sourcePortRange.lowerBound
            + UInt16(truncatingIfNeeded: (UInt64(flowHash(forInner: packet)) &* span) >> 32)
    }

    /// The 32-bit hash `sourcePort` scales: the same fields, so a flow has one hash. The engine
    /// scales it onto its pool of source-port sockets instead (see `Engine.SourcePorts`).
    /// An inner IPv6 packet hashes its addresses, next header and, for TCP and UDP right behind the
    /// fixed header, its ports; the flow label is left out, as a host may change it mid-flow.
    @inlinable
    public static func flowHash(forInner packet: PacketBuffer) -> UInt32 {
        var flow: UInt64 = 0
        var extra: UInt64 = 0
        if packet.length >= IPv6Header.length, packet[0] >> 4 == 6 {
            let bytes = packet.start
            // Each 64-bit half of the addresses rotated differently, so swapping them changes the hash.
            func half(_ offset: Int, _ rotation: UInt64) -> UInt64 {
                let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                return value << rotation | value >> (64 - rotation)
            }
            flow = half(8, 1) ^ half(16, 17) ^ half(24, 31) ^ half(32, 47)
            let nextHeader = bytes.load(fromByteOffset: 6, as: UInt8.self)
            extra = UInt64(nextHeader)
            if nextHeader == IPProtocol.tcp || nextHeader == IPProtocol.udp, IPv6Header.length + 4 <= packet.length {
                extra |= UInt64(bytes.loadUnaligned(fromByteOffset: IPv6Header.length, as: UInt32.self)) << 8
            }
        } else if packet.length >= IPv4Header.minimumLength {
            let bytes = packet.start
            // Addresses and protocol hashed as loaded: only determinism matters, not byte order.
            flow =
                UInt64(bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) << 32
                | UInt64(bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            let proto = bytes.load(fromByteOffset: 9, as: UInt8.self)
            extra = UInt64(proto)
            let headerLength = Int(bytes.load(as: UInt8.self) & 0x0F) << 2
            let fragmentBits = bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self) & UInt16(0x3FFF).bigEndian
            if proto == IPProtocol.tcp || proto == IPProtocol.udp, fragmentBits == 0,
                headerLength >= IPv4Header.minimumLength, headerLength + 4 <= packet.length
            {
                extra |= UInt64(bytes.loadUnaligned(fromByteOffset: headerLength, as: UInt32.self)) << 8
            }
        }
        // SplitMix64's finalizer: every input bit reaches every output bit.
        var hash = flow ^ (extra &* 0x9E37_79B9_7F4A_7C15)
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        hash ^= hash >> 31
        return UInt32(truncatingIfNeeded: hash >> 32)
    }
}
