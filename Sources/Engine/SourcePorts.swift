import Forwarding
import Packets

/// The sockets one worker sends vxlan datagrams from, one per outer UDP source port, and the
/// choice among them by inner flow.
///
/// The kernel's vxlan device gives each flow its own source port (a hash of the inner flow over
/// the ephemeral range, 32768–60999) so the underlay's ECMP and the receiver's RSS spread flows.
/// A UDP socket sends from the one port it is bound to, and no sendmsg option changes that
/// (IP_PKTINFO picks the source address only); a raw socket could write any port, but it needs
/// CAP_NET_RAW, computes no checksum, receives every UDP packet of the host and has no UDP_SEGMENT
/// (GSO). So each worker binds a small pool of sockets to ports the kernel picks from the same
/// ephemeral range, and the inner flow hash picks the socket: one flow keeps one port, different
/// flows spread over the pool. Receivers do not care which port a VXLAN datagram comes from.
///
/// A plain view of fds the engine owns; empty (every send from the worker's bound socket) for
/// the udp backend, whose datagrams come from port 8285 as flannel's proxy sends them.
public struct SourcePorts: @unchecked Sendable {
    // @unchecked: a read-only view of fds, valid while the engine runs the worker.
    @usableFromInline let sockets: UnsafeBufferPointer<Int32>

    public static let none = SourcePorts(sockets: UnsafeBufferPointer(start: nil, count: 0))

    public init(sockets: UnsafeBufferPointer<Int32>) { self.sockets = sockets }

    public var count: Int { sockets.count }

    /// The socket to send `payload` (as `fromTUN` left it) from: the pool's by flow hash, or
    /// `bound` when the pool is empty.
    @inlinable @inline(__always)
    public func socket(for payload: PacketBuffer, forwarder: Forwarder, bound: Int32) -> Int32 {
        guard sockets.count > 0 else { return bound }
        // Multiply-shift scales the 32-bit hash onto the pool without a division.
        let index = Int(
            truncatingIfNeeded: (UInt64(forwarder.flowHash(ofPayload: payload)) &* UInt64(sockets.count)) >> 32
        )
        return sockets[index]
    }
}
