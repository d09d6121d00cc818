import Packets
import Routes

/// What to do with a packet read from the TUN, after `Forwarder.fromTUN`.
public enum TransmitVerdict: Equatable, Sendable {
    /// The buffer holds the UDP payload for the peer: send it to `nextHop.publicIP`:`nextHop.port`.
    case send(NextHop)
    /// No route: the buffer now holds an ICMP net unreachable for the sender; write it back to the
    /// TUN. Counted as a `.noRoute` drop.
    case replyToTUN
    case drop(DropReason)
}

/// What to do with a datagram received from a peer, after `Forwarder.fromWire`.
public enum ReceiveVerdict: Equatable, Sendable {
    /// The buffer holds the inner IPv4 packet: write it to the TUN.
    case deliver
    case drop(DropReason)
}
