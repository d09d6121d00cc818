/// The datagrams the flood tests throw at a dataplane from a host without a lease (the engine's
/// own test and the one against a whole weftd), with the reason each must be dropped for.
/// Seeded, so a failing run can be replayed.
public struct GarbageFlood {
    private var random: SplitMix64
    private let valid: [UInt8]
    private var index = 0
    /// Reused for every datagram: `next()` returns a view of it.
    private var datagram = [UInt8](repeating: 0, count: 256)

    /// Every fourth datagram is `valid` (a sound packet, dropped only because of who sent it);
    /// the others are random bytes, half of those with version 4 and half again with 0x45 and a
    /// total length near the datagram's, so every validation stage sees traffic.
    public init(seed: UInt64, valid: [UInt8]) {
        precondition(valid.count <= 256, "the valid packet must fit the 256-byte datagram")
        random = SplitMix64(seed: seed)
        self.valid = valid
    }

    public mutating func next() -> ArraySlice<UInt8> {
        defer { index += 1 }
        let length = index % 4 == 0 ? valid.count : Int(random.next() % 200) + 1
        if index % 4 == 0 {
            datagram.replaceSubrange(0..<length, with: valid)
        } else {
            datagram.withUnsafeMutableBytes { bytes in
                for word in 0..<((length + 7) / 8) {
                    bytes.storeBytes(of: random.next(), toByteOffset: word * 8, as: UInt64.self)
                }
            }
        }
        if index % 4 == 2 { datagram[0] = 0x40 | datagram[0] & 0x0F }
        if index % 4 == 3 {
            datagram[0] = 0x45
            let total = Int(random.next() % UInt64(length + 8))
            datagram[2] = UInt8(total >> 8)
            datagram[3] = UInt8(total & 0xFF)
        }
        return datagram[..<length]
    }

    /// What the udp backend must drop a datagram from a non-peer for, from RFC 791's header
    /// layout and the pipeline's order (validate, TTL, then the sender): too short for a header,
    /// not version 4, IHL outside 5...15 or past the end, total length below the header or past
    /// the end, a TTL that would reach 0; a sound packet from a sender without a lease is an
    /// unknown sender. Names as the drop counters print them.
    public static func expectedDrop(_ bytes: ArraySlice<UInt8>) -> String {
        let start = bytes.startIndex
        if bytes.count < 20 { return "truncated" }
        if bytes[start] >> 4 != 4 { return "wrong_version" }
        let headerBytes = Int(bytes[start] & 0x0F) * 4
        if headerBytes < 20 || headerBytes > bytes.count { return "bad_ihl" }
        let total = Int(bytes[start + 2]) * 256 + Int(bytes[start + 3])
        if total < headerBytes || total > bytes.count { return "bad_total_length" }
        if bytes[start + 8] < 2 { return "ttl_expired" }
        return "unknown_sender"
    }
}

/// An IPv4/UDP packet from port 40000 (UDP checksum 0: none) with a valid header checksum,
/// written out byte by byte with a checksum loop of its own (independent of Packets).
/// Addresses are four bytes in network order.
public func ipv4UDPPacket(
    source: [UInt8],
    destination: [UInt8],
    port: UInt16,
    payload: [UInt8],
    ttl: UInt8 = 64
) -> [UInt8] {
    precondition(source.count == 4 && destination.count == 4, "IPv4 addresses are four bytes")
    let total = 28 + payload.count
    var bytes: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0]
    bytes += source + destination
    var sum: UInt32 = 0
    for index in stride(from: 0, to: 20, by: 2) { sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1]) }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    let checksum = ~UInt16(sum)
    bytes[10] = UInt8(checksum >> 8)
    bytes[11] = UInt8(checksum & 0xFF)
    let udpLength = 8 + payload.count
    bytes += [0x9C, 0x40, UInt8(port >> 8), UInt8(port & 0xFF), UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
    return bytes + payload
}

/// A VXLAN payload written out field by field (RFC 7348 §5), independent of Packets' encapsulation:
/// the VXLAN header, then the inner Ethernet header (MACs six bytes each) and `inner`.
public func vxlanFrame(
    _ inner: [UInt8],
    flags: UInt8 = 0x08,
    vni: UInt32 = 1,
    destination: [UInt8],
    source: [UInt8],
    etherType: UInt16 = 0x0800
) -> [UInt8] {
    precondition(destination.count == 6 && source.count == 6, "MAC addresses are six bytes")
    return [flags, 0, 0, 0, UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), 0]
        + destination + source + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)] + inner
}
