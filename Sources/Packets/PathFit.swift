/// How an inner packet fits a path whose MTU the kernel has learned (a router on the way with a
/// smaller MTU than our interface), as the kernel's own tunnels decide it (ip_tunnel's
/// tnl_update_pmtu, skb_tunnel_check_pmtu): what fits is sent as it is; a packet with DF that
/// does not is answered with ICMP fragmentation needed naming the inner MTU; one without DF is
/// sent whole and its outer datagram fragmented. TCP super-packets are cut to fit instead.
public enum PathFit {
    /// Outer IPv4 + UDP header, which the kernel writes in front of every datagram we send.
    public static let outerHeaders = 28
    /// Below this the kernel's tunnels send no ICMP (iptunnel_pmtud_check_icmp): such a path MTU
    /// is more likely a forged ICMP than a real link.
    public static let smallestAnsweredMTU = 576

    /// The largest inner packet a path MTU carries, with `encapsulation` bytes (the forwarder's
    /// headroom: 0 for udp, 22 for vxlan) between the outer UDP header and the inner packet.
    @inlinable
    public static func innerMTU(pathMTU: Int, encapsulation: Int) -> Int {
        pathMTU - outerHeaders - encapsulation
    }

    /// The TCP payload per segment a super-packet is cut into: the sender's MSS (`gsoSize`), or
    /// less when a segment of that size (`headersLength` of IP + TCP headers in front) would not
    /// fit `innerMTU`. Nil when not even one payload byte fits (no usable path: drop).
    @inlinable
    public static func segmentPayload(gsoSize: Int, headersLength: Int, innerMTU: Int) -> Int? {
        let room = innerMTU - headersLength
        guard room > 0 else { return nil }
        return min(gsoSize, room)
    }
}
