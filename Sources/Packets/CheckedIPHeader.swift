/// What reading a header found: the value, or why the packet is dropped.
enum Checked<Value> {
    case valid(Value)
    case dropped(DropReason)
}

/// The IP header of a packet that segmentation cuts or coalescing joins, checked against the
/// buffer as `IPv4.validate` or `IPv6.validate` checks it, and then its TCP or UDP header: what
/// both read before touching a packet, written once for both.
struct CheckedIPHeader {
    typealias F = GSOFields
    /// Behind a 40-byte IPv6 fixed header; IPv4 otherwise.
    let isIPv6: Bool
    let headerLength: Int
    /// IPv4's total length, IPv6's 40 + payload length; bytes past it are not the packet's.
    let totalLength: Int
    /// IPv4's protocol, IPv6's next header: extension headers are not walked, so one of them here
    /// means the transport header does not follow the fixed header.
    let proto: UInt8

    /// The header of the packet `packet`; IPv6 when its version says 6, IPv4 otherwise.
    @inline(__always)
    static func read(_ packet: PacketBuffer) -> Checked<CheckedIPHeader> {
        let ip = UnsafeRawPointer(packet.start)
        if packet.length > 0 && F.load8(ip, F.ipVersionIHL) >> 4 == 6 {
            if let reason = IPv6.validate(packet) { return .dropped(reason) }
            return .valid(
                CheckedIPHeader(
                    isIPv6: true,
                    headerLength: F.ip6Header,
                    totalLength: F.ip6Header + Int(F.load16(ip, F.ip6PayloadLength)),
                    proto: F.load8(ip, F.ip6NextHeader)
                )
            )
        }
        if let reason = IPv4.validate(packet) { return .dropped(reason) }
        return .valid(
            CheckedIPHeader(
                isIPv6: false,
                headerLength: Int(F.load8(ip, F.ipVersionIHL) & 0x0F) * 4,
                totalLength: Int(F.load16(ip, F.ipTotalLength)),
                proto: F.load8(ip, F.ipProtocol)
            )
        )
    }

    /// An IPv4 fragment (MF set or an offset): neither path cuts or joins one.
    @inline(__always)
    func isFragment(_ ip: UnsafeRawPointer) -> Bool {
        !isIPv6 && F.load16(ip, F.ipFlagsFragment) & F.ipMoreFragmentsOrOffset != 0
    }

    /// The length of the TCP (`isTCP`) or UDP header behind this one: a TCP header's data offset
    /// must cover its 20 fixed bytes, and either header must end within the total length.
    @inline(__always)
    func transportHeaderLength(_ ip: UnsafeRawPointer, isTCP: Bool) -> Checked<Int> {
        guard isTCP else {
            return headerLength + F.udpHeader <= totalLength ? .valid(F.udpHeader) : .dropped(.truncated)
        }
        guard headerLength + F.tcpMinimumHeader <= totalLength else { return .dropped(.truncated) }
        let length = Int(F.load8(ip, headerLength + F.tcpDataOffset) >> 4) * 4
        guard length >= F.tcpMinimumHeader else { return .dropped(.badTCPHeader) }
        guard headerLength + length <= totalLength else { return .dropped(.truncated) }
        return .valid(length)
    }
}
