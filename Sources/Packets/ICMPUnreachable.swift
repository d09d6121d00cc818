import Addressing

/// ICMP destination unreachable (type 3) in answer to a packet Weft cannot forward, laid out as
/// flannel's udp proxy writes it into the TUN: a 20-byte IPv4 header (TTL 8, protocol 1, from
/// the TUN address to the offender's source), the 8-byte ICMP header, then the offender's IP
/// header and the first 8 bytes of its payload (RFC 792).
public enum ICMPUnreachable: ICMPErrorReply {
    public enum Kind: Sendable, Equatable {
        /// Code 0: no route to the destination's network.
        case netUnreachable
        /// Code 4: the packet has DF set and exceeds the next hop's MTU (RFC 1191: MTU in bytes 6-7).
        case fragmentationNeeded(nextHopMTU: UInt16)
    }

    public static let type: UInt8 = 3
    public static let headerLength = 8
    /// The reply's IPv4 header has no options.
    public static let replyHeaderLength = IPv4Header.minimumLength
    /// flannel's value. The reply only goes from the TUN into this host's own stack (to a local
    /// process or a local container), so 8 hops is plenty and bounds any loop.
    public static let replyTTL: UInt8 = 8
    /// Reply for an offender with a 60-byte header: 20 + 8 + 60 + 8.
    public static let maximumLength = replyHeaderLength + headerLength + IPv4Header.maximumLength + 8

    /// Writes the reply to `offender` at `destination` and returns its length, or nil when no reply
    /// is due or it would not fit in `capacity`. `destination` may overlap the offender (all of it
    /// is read before anything is written). No reply is due (RFC 1122 3.2.2, RFC 792) for:
    /// a malformed IPv4 packet (bad IHL or lengths), a non-first fragment, an ICMP error (types 3,
    /// 4, 5, 11, 12; an echo request does get one), a source that is not one host (0.0.0.0,
    /// 127/8, multicast, class E, broadcast), or a multicast or broadcast destination.
    public static func write(
        _ kind: Kind,
        offender: PacketBuffer,
        source: IPv4Address,
        to destination: UnsafeMutableRawPointer,
        capacity: Int
    ) -> Int? {
        guard IPv4.validate(offender) == nil else { return nil }
        let header = IPv4Header(offender)
        guard header.isFirstFragment else { return nil }
        let offenderSource = header.source
        guard isSingleHost(offenderSource), header.destination.value < 0xE000_0000 else { return nil }
        let offenderHeaderLength = header.headerLength
        let payloadLength = header.totalLength - offenderHeaderLength
        if header.protocol == IPProtocol.icmp {
            guard payloadLength >= 1 else { return nil }
            switch offender[offenderHeaderLength] {
            case 3, 4, 5, 11, 12: return nil
            default: break
            }
        }
        let quoted = offenderHeaderLength + min(payloadLength, 8)
        let length = replyHeaderLength + headerLength + quoted
        guard length <= capacity else { return nil }

        // Offender first: copyMemory is a memmove, and nothing in front of it is read afterwards.
        let icmp = destination + replyHeaderLength
        (icmp + headerLength).copyMemory(from: offender.start, byteCount: quoted)

        let reply = IPv4Header(destination)
        destination.storeBytes(of: 0x45, as: UInt8.self)
        destination.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)  // TOS
        reply.totalLength = length
        reply.identification = 0
        destination.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)  // flags, fragment offset
        reply.ttl = replyTTL
        reply.protocol = IPProtocol.icmp
        reply.source = source
        reply.destination = offenderSource
        reply.storeChecksum()

        icmp.storeBytes(of: type, as: UInt8.self)
        switch kind {
        case .netUnreachable:
            icmp.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
            icmp.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)
        case .fragmentationNeeded(let mtu):
            icmp.storeBytes(of: 4, toByteOffset: 1, as: UInt8.self)
            icmp.storeBytes(of: 0, toByteOffset: 4, as: UInt16.self)
            icmp.storeBytes(of: mtu.bigEndian, toByteOffset: 6, as: UInt16.self)
        }
        icmp.storeBytes(of: 0, toByteOffset: 2, as: UInt16.self)
        let checksum = InternetChecksum.checksum(icmp, count: headerLength + quoted)
        icmp.storeBytes(of: checksum, toByteOffset: 2, as: UInt16.self)
        return length
    }

    /// RFC 1122 3.2.2: errors go only to a source naming one host.
    static func isSingleHost(_ address: IPv4Address) -> Bool {
        let value = address.value
        return value != 0 && value >> 24 != 127 && value < 0xE000_0000
    }
}
