import Addressing

/// ICMPv6 error messages (RFC 4443) in answer to an IPv6 packet Weft cannot forward, laid out as
/// Linux's icmp6_send writes them: a 40-byte IPv6 header (no extension headers, next header 58,
/// from `source` to the offender's source), the 8-byte ICMPv6 header, then as much of the
/// offending packet as keeps the reply within the IPv6 minimum MTU of 1280 bytes (RFC 4443 §2.4
/// (c): 1232 quoted bytes at most). The ICMPv6 checksum covers the IPv6 pseudo-header (§2.3).
/// The IPv4 counterpart is `ICMPUnreachable`.
public enum ICMPv6Error: ICMPErrorReply {
    public enum Kind: Sendable, Equatable {
        /// Destination Unreachable (type 1), code 0: no route to the destination (RFC 4443 §3.1).
        case noRoute
        /// Packet Too Big (type 2, code 0): the packet exceeds the next link's `mtu`, carried in
        /// bytes 4-7 (RFC 4443 §3.2). IPv6 routers never fragment, so every oversize packet gets one.
        case packetTooBig(mtu: UInt32)
        /// Time Exceeded (type 3), code 0: hop limit exceeded in transit (RFC 4443 §3.3).
        case hopLimitExceeded

        @inlinable var typeAndCode: (UInt8, UInt8) {
            switch self {
            case .noRoute: (1, 0)
            case .packetTooBig: (2, 0)
            case .hopLimitExceeded: (3, 0)
            }
        }
    }

    public static let headerLength = 8
    public static let replyHeaderLength = IPv6Header.length
    /// Linux's default hop limit (net.ipv6.conf.*.hop_limit). Unlike IPv4's net unreachable, a
    /// Time Exceeded reply may have to cross the overlay back to a remote sender, so 8 is not enough.
    public static let replyHopLimit: UInt8 = 64
    /// A reply never exceeds the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
    public static let maximumLength = IPv6Header.minimumMTU
    /// The most of the offender a reply quotes: 1280 − 40 − 8.
    public static let maximumQuote = maximumLength - replyHeaderLength - headerLength

    /// Writes the reply to `offender` at `destination` and returns its length, or nil when no reply
    /// is due or it would not fit in `capacity`. `destination` may overlap the offender (all of it
    /// is read before anything is written). No reply is due (RFC 4443 §2.4 (e)) for: a malformed
    /// IPv6 packet; an ICMPv6 error (types 0-127) or a redirect (137), or a packet whose
    /// extension headers end before its ICMPv6 type can be read (unless it is a later fragment,
    /// which Linux answers too: is_ineligible in net/ipv6/icmp.c); a source that is not one
    /// host (::, ::1, multicast); a multicast destination, except for Packet Too Big (§2.4 (e.3),
    /// so that multicast senders learn the path MTU).
    public static func write(
        _ kind: Kind,
        offender: PacketBuffer,
        source: IPv6Address,
        to destination: UnsafeMutableRawPointer,
        capacity: Int
    ) -> Int? {
        guard IPv6.validate(offender) == nil else { return nil }
        let header = IPv6Header(offender)
        let offenderSource = header.source
        let offenderLength = header.totalLength
        guard isSingleHost(offenderSource) else { return nil }
        if case .packetTooBig = kind {} else if isMulticast(header.destination) { return nil }
        guard !isErrorOrRedirect(offender.start, length: offenderLength) else { return nil }

        let quoted = min(offenderLength, maximumQuote)
        let length = replyHeaderLength + headerLength + quoted
        guard length <= capacity else { return nil }

        // Offender first: copyMemory is a memmove, and nothing in front of it is read afterwards.
        let icmp = destination + replyHeaderLength
        (icmp + headerLength).copyMemory(from: offender.start, byteCount: quoted)

        let reply = IPv6Header(destination)
        reply.initialize(
            payloadLength: headerLength + quoted,
            nextHeader: IPv6NextHeader.icmpv6,
            hopLimit: replyHopLimit,
            source: source,
            destination: offenderSource
        )
        let (type, code) = kind.typeAndCode
        icmp.storeBytes(of: type, as: UInt8.self)
        icmp.storeBytes(of: code, toByteOffset: 1, as: UInt8.self)
        icmp.storeBytes(of: 0, toByteOffset: 2, as: UInt16.self)
        if case .packetTooBig(let mtu) = kind {
            icmp.storeBytes(of: mtu.bigEndian, toByteOffset: 4, as: UInt32.self)
        } else {
            icmp.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)  // unused, must be zero
        }
        let pseudo = reply.pseudoHeaderSum(nextHeader: IPv6NextHeader.icmpv6, length: headerLength + quoted)
        let checksum = InternetChecksum.checksum(icmp, count: headerLength + quoted, initial: pseudo)
        icmp.storeBytes(of: checksum, toByteOffset: 2, as: UInt16.self)
        return length
    }

    /// RFC 4443 §2.4 (e.6): errors go only to a source naming one node.
    static func isSingleHost(_ address: IPv6Address) -> Bool {
        address.value > 1 && !isMulticast(address)
    }

    /// ff00::/8.
    static func isMulticast(_ address: IPv6Address) -> Bool { address.value >> 120 == 0xFF }

    /// The offender is an ICMPv6 error or redirect, or an ICMPv6 message whose type cannot be read,
    /// or its extension headers cannot be walked and it is not a later fragment (RFC 4443 §2.4
    /// (e.1), (e.2)).
    static func isErrorOrRedirect(_ bytes: UnsafeRawPointer, length: Int) -> Bool {
        guard let (offset, proto, fragmentOffset) = IPv6.upperLayer(bytes, length: length) else {
            // Linux (ipv6_skip_exthdr < 0) answers a chain it cannot walk; so does Weft.
            return false
        }
        guard proto == IPv6NextHeader.icmpv6, fragmentOffset == 0 else { return false }
        guard offset < length else { return true }
        let type = bytes.load(fromByteOffset: offset, as: UInt8.self)
        return type < 128 || type == 137
    }
}
