import Packets
import Routes

/// What to do with a packet read from the TUN, after `Forwarder.fromTUN`.
public enum TransmitVerdict: Equatable, Sendable {
    /// The buffer holds the UDP payload for the peer: send it to `nextHop.publicIP`:`nextHop.port`.
    case send(NextHop)
    /// vxlan over the IPv6 underlay: the buffer holds the UDP payload for `hop.address`:`hop.port`,
    /// to leave from the IPv6 socket.
    case sendIPv6(IPv6Hop)
    /// The packet cannot be forwarded and the buffer now holds the ICMP (or ICMPv6) error that
    /// tells its sender why: write it back to the TUN. Counted as a drop for `reason` (no route,
    /// hop limit expired, oversize).
    case replyToTUN(DropReason)
    case drop(DropReason)
}

/// What to do with a datagram received from a peer, after `Forwarder.fromWire`.
public enum ReceiveVerdict: Equatable, Sendable {
    /// The buffer holds the inner IPv4 or IPv6 packet: write it to the TUN.
    case deliver
    case drop(DropReason)
}
