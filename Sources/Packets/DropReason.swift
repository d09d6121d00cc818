/// Why a packet was not forwarded. A drop is not an error: every one is counted by reason, and the
/// engine's counters are indexed by `rawValue`, so cases are only ever appended.
public enum DropReason: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// Shorter than the headers it claims to carry (IPv6: under 40 bytes).
    case truncated = 0
    /// IP version field is not 4 (IPv6: not 6).
    case wrongVersion
    /// IHL below 5, or IHL·4 past the packet.
    case badIHL
    /// Total length below IHL·4 or past the buffer.
    case badTotalLength
    /// TTL would reach zero on this hop.
    case ttlExpired
    /// No route in the current table for the inner destination.
    case noRoute
    /// Larger than the buffer or the path can carry.
    case oversize
    /// VXLAN I flag (0x08) clear.
    case vxlanFlagClear
    /// VXLAN VNI is not ours.
    case wrongVNI
    /// Inner Ethernet destination is neither our VtepMAC nor broadcast.
    case notOurMAC
    /// Inner EtherType is not IPv4 (0x0800), nor IPv6 (0x86DD) where the overlay carries IPv6.
    case notIPv4
    /// Outer source is not a current lease's PublicIP.
    case unknownSender
    /// Inner source lies outside the sending peer's subnet.
    case spoofedSource
    /// IPv4 header checksum does not verify.
    case badChecksum
    /// Outer datagram is not UDP to our port (seen by replay on raw captures).
    case notOurTraffic
    /// virtio-net header inconsistent with itself or with the packet's headers (GSO type, gso_size,
    /// hdr_len, csum_start/csum_offset), or an offload Weft does not segment.
    case badVirtioHeader
    /// TCP data offset below 5 words.
    case badTCPHeader
    /// A peer's datagram whose inner destination lies outside our lease's subnet: written to the
    /// TUN, the kernel would forward it on (to the underlay, another peer), making the tunnel a relay.
    case notOurSubnet
    /// Larger than the path to its peer carries (a smaller MTU on the way, learned by the kernel)
    /// and DF set: answered with ICMP fragmentation needed naming the inner MTU that fits.
    case exceedsPathMTU
    /// IPv6 payload length past the buffer.
    case badPayloadLength
    /// IPv6 hop limit would reach zero on this hop (udp, which routes rather than bridges): from
    /// the TUN answered with ICMPv6 Time Exceeded; from the wire dropped unanswered, as flannel's
    /// proxy drops an expired IPv4 packet.
    case hopLimitExpired
    /// An IPv6 TSO or USO super-packet with extension headers between the fixed header and TCP
    /// or UDP: Weft does not segment it (a routing header would change the checksum's addresses).
    case ipv6ExtensionHeaders

    public var description: String {
        switch self {
        case .truncated: "truncated"
        case .wrongVersion: "wrong_version"
        case .badIHL: "bad_ihl"
        case .badTotalLength: "bad_total_length"
        case .ttlExpired: "ttl_expired"
        case .noRoute: "no_route"
        case .oversize: "oversize"
        case .vxlanFlagClear: "vxlan_flag_clear"
        case .wrongVNI: "wrong_vni"
        case .notOurMAC: "not_our_mac"
        case .notIPv4: "not_ipv4"
        case .unknownSender: "unknown_sender"
        case .spoofedSource: "spoofed_source"
        case .badChecksum: "bad_checksum"
        case .notOurTraffic: "not_our_traffic"
        case .badVirtioHeader: "bad_virtio_header"
        case .badTCPHeader: "bad_tcp_header"
        case .notOurSubnet: "not_our_subnet"
        case .exceedsPathMTU: "exceeds_path_mtu"
        case .badPayloadLength: "bad_payload_length"
        case .hopLimitExpired: "hop_limit_expired"
        case .ipv6ExtensionHeaders: "ipv6_extension_headers"
        }
    }
}
