import Addressing
import CShims
import Forwarding
import Glibc
import Packets
import Routes

/// Who sent a datagram: a peer on the IPv4 underlay, or on vxlan's IPv6 underlay.
enum WireSender {
    case ipv4(IPv4Address)
    case ipv6(IPv6Address)

    /// `Forwarder.fromWire` for the IPv4 socket's datagrams, `ipv6UnderlayFromWire` for the IPv6
    /// socket's; with the verdict, the peer's IPv4 PublicIP, its name in the counters.
    @inline(__always)
    func admit(
        _ packet: inout PacketBuffer,
        _ forwarder: Forwarder,
        table: RouteTable,
        ipv6Table: IPv6RouteTable?
    ) -> (ReceiveVerdict, IPv4Address) {
        switch self {
        case .ipv4(let sender):
            return (forwarder.fromWire(&packet, sender: sender, table: table, ipv6Table: ipv6Table), sender)
        case .ipv6(let sender):
            // The IPv6 socket exists only with an IPv6 subnet, so the table is there.
            guard let ipv6Table else { return (.drop(.notOurSubnet), IPv4Address(0)) }
            var peer = IPv4Address(0)
            return (forwarder.ipv6UnderlayFromWire(&packet, sender: sender, table: ipv6Table, peer: &peer), peer)
        }
    }
}

/// A multishot recvmsg completion into socket buffer `id`, parsed with the template of the socket
/// it came from (the IPv4 one's sockaddr_in, the IPv6 one's sockaddr_in6).
struct ReceivedDatagram {
    /// weft_recvmsg_parse's result: 0, 1 for MSG_TRUNC, -1 when malformed.
    let parsed: Int32
    /// Where the payload starts in the buffer (from its base) and its length.
    let headroom: Int
    let length: Int
    let sender: WireSender
    /// The completion's result and the template it was received with, for its UDP_GRO cmsg.
    let result: Int32
    let message: UnsafeMutablePointer<msghdr>

    @inline(__always)
    init(_ buffers: UringBufferLayout, _ id: Int, _ result: Int32, overIPv6: Bool) {
        var offset: Int32 = 0
        var length: UInt32 = 0
        self.result = result
        let provided = buffers.providedAddress(id)
        if overIPv6 {
            message = buffers.ipv6ReceiveMessage
            var address: (UInt64, UInt64) = (0, 0)
            parsed = withUnsafeMutableBytes(of: &address) {
                weft_recvmsg_parse6(provided, result, buffers.ipv6ReceiveMessage, &offset, &length, $0.baseAddress)
            }
            sender = .ipv6(withUnsafeBytes(of: &address) { IPv6Address(loadingFrom: $0.baseAddress!) })
        } else {
            message = buffers.receiveMessage
            var address: UInt32 = 0
            var port: UInt16 = 0
            parsed = weft_recvmsg_parse(provided, result, buffers.receiveMessage, &offset, &length, &address, &port)
            sender = .ipv4(IPv4Address(networkOrder: address))
        }
        headroom = (provided - buffers.base(id)) + Int(offset)
        self.length = Int(length)
    }

    /// The payload where it lies in buffer `id`; nil when it was truncated, malformed or runs past
    /// the buffer's packet capacity.
    @inline(__always)
    func packet(_ buffers: UringBufferLayout, _ id: Int) -> PacketBuffer? {
        guard parsed == 0, headroom + length <= buffers.packetCapacity(id) else { return nil }
        return PacketBuffer(
            base: buffers.base(id),
            headroom: headroom,
            length: length,
            capacity: buffers.packetCapacity(id)
        )
    }
}
