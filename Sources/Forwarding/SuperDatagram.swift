import Packets
import Routes

/// A UDP GSO super-datagram: what a veth capture shows when a sender hands the kernel several
/// datagrams in one send with UDP_SEGMENT (as Weft's engine does) and the frame crosses the veth
/// unsegmented. One outer IPv4/UDP header covers every segment; the payload is the segments back
/// to back, each `gso_size` bytes except the last, which may be shorter.
///
/// The capture does not record gso_size, but every segment starts with a whole encapsulated
/// packet whose inner IPv4 total length (IPv6: payload length) says how long it is, and every
/// segment but the last is exactly gso_size long, so the first segment's length is gso_size. The
/// engine does not need this: with UDP_GRO the kernel reports gso_size for each coalesced receive.
public enum SuperDatagram {
    /// Where to cut `payload` (a UDP payload, outer headers gone): the segment length when the
    /// payload is a super-datagram, or `payload.length` when it is a single datagram.
    ///
    /// It is a super-datagram only when the first segment is a well-formed start (vxlan: I flag
    /// and the inner EtherType of its version; IPv4: IHL ≥ 5, total length ≥ IHL·4; IPv6: a whole
    /// fixed header) shorter than the payload AND the bytes after it begin another such start
    /// (vxlan: the same first VXLAN word and VNI). Anything else is one datagram, so a malformed packet is dropped for its own
    /// fault, and bytes after a short inner packet (a VTEP that pads inner frames to 60 bytes) are
    /// trimmed, not read as a segment.
    public static func segmentLength(_ payload: PacketBuffer, backend: Backend) -> Int {
        let offset = backend == .vxlan ? VXLAN.overhead : 0
        guard let first = encapsulatedLength(payload, at: 0, inner: offset, backend: backend),
            first < payload.length,
            encapsulatedLength(payload, at: first, inner: offset, backend: backend) != nil
        else {
            return payload.length
        }
        if backend == .vxlan {
            // Segments of one send share the VXLAN header: flags and VNI.
            guard payload.load32(first) == payload.load32(0), payload.load32(first + 4) == payload.load32(4) else {
                return payload.length
            }
        }
        return first
    }

    /// The length of the encapsulated packet starting `at`, as its headers state it, or nil when
    /// they do not look like the start of one: IPv4 by its total length, IPv6 by its fixed header
    /// and payload length (vxlan: under the EtherType of its version).
    static func encapsulatedLength(_ payload: PacketBuffer, at start: Int, inner: Int, backend: Backend) -> Int? {
        let ip = start + inner
        guard payload.length >= ip + IPv4Header.minimumLength else { return nil }
        let version = payload[ip] >> 4
        if backend == .vxlan {
            let etherType = payload.load16(start + VXLAN.headerLength + 12)
            guard payload[start] & VXLAN.validVNIFlag != 0,
                etherType == (version == 6 ? EtherType.ipv6 : EtherType.ipv4)
            else { return nil }
        }
        switch version {
        case 4:
            let headerLength = Int(payload[ip] & 0x0F) << 2
            let totalLength = Int(payload.load16(ip + 2))
            guard headerLength >= IPv4Header.minimumLength, totalLength >= headerLength else { return nil }
            return inner + totalLength
        case 6:
            guard payload.length >= ip + IPv6Header.length else { return nil }
            return inner + IPv6Header.length + Int(payload.load16(ip + 4))
        default:
            return nil
        }
    }
}
