import Addressing
import Packets
import Routes

/// Inner IPv6 over the IPv4 underlay: the same pipeline as IPv4's, with the IPv6 route table
/// published beside the IPv4 one and ICMPv6 in place of ICMP. Reached only after IPv4's checks
/// refused the packet, so none of this runs for IPv4.
extension Forwarder {
    /// `fromTUN` for an IPv6 packet: validate and trim it, look up the peer owning its destination,
    /// then (udp) decrement the hop limit, or (vxlan) encapsulate it with EtherType IPv6. A router
    /// answers what it cannot forward (RFC 4443), and so does this one, into the TUN: no route
    /// (Destination Unreachable), longer than the overlay MTU (Packet Too Big naming it: IPv6 is
    /// never fragmented on the way; a super-packet is exempt, its segments will fit), hop limit
    /// spent (Time Exceeded).
    @inlinable
    public func ipv6FromTUN(
        _ packet: inout PacketBuffer,
        table: IPv6RouteTable,
        isSuperPacket: Bool = false
    ) -> TransmitVerdict {
        if let reason = IPv6.validateAndTrim(&packet) { return .drop(reason) }
        guard let nextHop = table.lookup(IPv6Header(packet).destination) else {
            return answer(&packet, with: .noRoute, dropping: .noRoute)
        }
        if packet.length > overlayMTU && !isSuperPacket {
            return answer(&packet, with: .packetTooBig(mtu: UInt32(overlayMTU)), dropping: .oversize)
        }
        if backend == .udp {
            if let reason = IPv6.decrementHopLimit(packet) {
                return answer(&packet, with: .hopLimitExceeded, dropping: reason)
            }
        } else {
            guard encapsulate(&packet, to: nextHop, etherType: EtherType.ipv6) else { return .drop(.oversize) }
        }
        return .send(nextHop)
    }

    /// Turns `packet` into the ICMPv6 error `kind` for its sender, from our IPv6 subnet's address
    /// (the TUN's), or drops it when no reply is due or we have no IPv6 subnet.
    @inlinable
    func answer(
        _ packet: inout PacketBuffer,
        with kind: ICMPv6Error.Kind,
        dropping reason: DropReason
    )
        -> TransmitVerdict
    {
        guard let ipv6Subnet, ICMPv6Error.replace(&packet, with: kind, source: ipv6Subnet.network) else {
            return .drop(reason)
        }
        return .replyToTUN(reason)
    }

    /// `fromWire` for an inner IPv6 packet: decapsulate (udp: validate, trim and decrement the hop
    /// limit, as for IPv4's TTL; an expired one is dropped unanswered, as flannel's proxy drops an
    /// expired IPv4 packet), then admit it as `ipv6Admit` says.
    @inlinable
    public func ipv6FromWire(
        _ packet: inout PacketBuffer,
        sender: IPv4Address,
        table: IPv6RouteTable,
        ipv4Table: RouteTable
    ) -> ReceiveVerdict {
        if let reason = ipv6Decapsulate(&packet) { return .drop(reason) }
        if let reason = ipv6Admit(packet, sender: sender, table: table, ipv4Table: ipv4Table) { return .drop(reason) }
        return .deliver
    }

    /// `decapsulate` for inner IPv6.
    @inlinable
    public func ipv6Decapsulate(_ packet: inout PacketBuffer) -> DropReason? {
        if backend == .udp {
            if let reason = IPv6.validateAndTrim(&packet) { return reason }
            return IPv6.decrementHopLimit(packet)
        }
        return VXLAN.decapsulateIPv6(&packet, vni: vni, localMAC: vtepMAC)
    }

    /// `admit` for inner IPv6. Anti-spoofing: the IPv6 subnet holding the source must be the
    /// sender's; a sender that owns no IPv6 subnet but an IPv4 one is still a peer
    /// (`.spoofedSource`), one that owns neither a stranger (`.unknownSender`). No relaying: the
    /// destination must lie in our IPv6 subnet.
    @inlinable
    public func ipv6Admit(
        _ inner: PacketBuffer,
        sender: IPv4Address,
        table: IPv6RouteTable,
        ipv4Table: RouteTable
    ) -> DropReason? {
        let header = IPv6Header(inner)
        guard let owner = table.lookup(header.source), owner.publicIP == sender else {
            return table.isPeer(publicIP: sender) || ipv4Table.isPeer(publicIP: sender)
                ? .spoofedSource : .unknownSender
        }
        guard let ipv6Subnet, ipv6Subnet.contains(header.destination) else { return .notOurSubnet }
        return nil
    }
}
