/// An ICMP error builder, IPv4's (`ICMPUnreachable`) or IPv6's (`ICMPv6Error`): each writes its
/// reply to a pointer; how a reply is placed in a packet buffer is the same for both and written
/// once here.
public protocol ICMPErrorReply {
    associatedtype Kind
    associatedtype Address
    /// The reply's IP header.
    static var replyHeaderLength: Int { get }
    /// The ICMP header before the quote.
    static var headerLength: Int { get }
    /// Writes the reply to `offender` at `destination` (which may overlap it) and returns its
    /// length, or nil when no reply is due or it would not fit in `capacity`.
    static func write(
        _ kind: Kind,
        offender: PacketBuffer,
        source: Address,
        to destination: UnsafeMutableRawPointer,
        capacity: Int
    ) -> Int?
}

extension ICMPErrorReply {
    /// Writes the reply at `reply.start` (room: up to the buffer's end) and sets `reply.length`.
    @inlinable
    public static func write(
        _ kind: Kind,
        offender: PacketBuffer,
        source: Address,
        into reply: inout PacketBuffer
    ) -> Int? {
        guard
            let length = write(
                kind,
                offender: offender,
                source: source,
                to: reply.start,
                capacity: reply.capacity - reply.headroom
            )
        else { return nil }
        reply.length = length
        return length
    }

    /// Turns the offending packet into its reply in place: with `replyHeaderLength + headerLength`
    /// bytes of headroom the reply ends where the quoted bytes already are, so nothing moves; with
    /// less, the quote is moved back. False when no reply is due; the packet is then unchanged.
    @inlinable
    public static func replace(_ packet: inout PacketBuffer, with kind: Kind, source: Address) -> Bool {
        let headroom = max(packet.headroom - replyHeaderLength - headerLength, 0)
        guard
            let length = write(
                kind,
                offender: packet,
                source: source,
                to: packet.base + headroom,
                capacity: packet.capacity - headroom
            )
        else { return false }
        packet.headroom = headroom
        packet.length = length
        return true
    }
}
