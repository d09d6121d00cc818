import Addressing
import Packets
import Routes

/// Inner IPv6: the same pipeline as IPv4's, with the IPv6 route table published beside the IPv4
/// one and ICMPv6 in place of ICMP. Reached only after IPv4's checks refused the packet, so none
/// of this runs for IPv4. vxlan carries it over the IPv6 underlay, as flannel's `flannel-v6.<VNI>`
/// does, when both sides have one (`ipv6VtepMAC`, `IPv6Route.hasIPv6Underlay`); otherwise, and
/// for udp, over the IPv4 underlay.
extension Forwarder {
    /// `fromTUN` for an IPv6 packet: validate and trim it, look up the peer owning its destination,
    /// then (udp) decrement the hop limit, or (vxlan) encapsulate it with EtherType IPv6. A router
    /// answers what it cannot forward (RFC 4443), and so does this one, into the TUN: no route
    /// (Destination Unreachable), longer than the overlay MTU (Packet Too Big naming it: IPv6 is
    /// never fragmented on the way; a super-packet is exempt, its segments will fit), hop limit
    /// spent (Time Exceeded). Over the IPv6 underlay the overlay MTU is `ipv6UnderlayMTU`, and the
    /// verdict `.sendIPv6`.
    @inlinable
    public func ipv6FromTUN(
        _ packet: inout PacketBuffer,
        table: IPv6RouteTable,
        isSuperPacket: Bool = false
    ) -> TransmitVerdict {
        if let reason = IPv6.validateAndTrim(&packet) { return .drop(reason) }
        guard let route = table.lookupRoute(IPv6Header(packet).destination) else {
            return answer(&packet, with: .noRoute, dropping: .noRoute)
        }
        if let ipv6VtepMAC, route.hasIPv6Underlay {
            if packet.length > ipv6UnderlayMTU && !isSuperPacket {
                return answer(&packet, with: .packetTooBig(mtu: UInt32(ipv6UnderlayMTU)), dropping: .oversize)
            }
            guard
                VXLAN.encapsulate(
                    &packet,
                    vni: vni,
                    source: ipv6VtepMAC,
                    destination: route.vtepMAC,
                    etherType: EtherType.ipv6
                )
            else { return .drop(.oversize) }
            return .sendIPv6(route.ipv6Hop)
        }
        let nextHop = route.nextHop
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

    /// `fromWire` for a datagram the IPv6 underlay's socket received from `sender`: vxlan with our
    /// VNI to our IPv6 VtepMAC, EtherType IPv6 (flannel-v6 carries nothing else). Admitted only
    /// when the IPv6 subnet holding the inner source belongs to the peer whose PublicIPv6 sent it
    /// (a sender that is no peer's underlay address of either family: `.unknownSender`) and the
    /// destination lies in our IPv6 subnet. On `.deliver`, `peer` is the sender's IPv4 PublicIP,
    /// its name in the per-peer counters.
    @inlinable
    public func ipv6UnderlayFromWire(
        _ packet: inout PacketBuffer,
        sender: IPv6Address,
        table: IPv6RouteTable,
        peer: inout IPv4Address
    ) -> ReceiveVerdict {
        guard let ipv6VtepMAC else { return .drop(.unknownSender) }
        if let reason = VXLAN.decapsulateIPv6(&packet, vni: vni, localMAC: ipv6VtepMAC) { return .drop(reason) }
        let header = IPv6Header(packet)
        guard let owner = table.lookupRoute(header.source), owner.hasIPv6Underlay, owner.publicIPv6 == sender else {
            return .drop(table.isPeer(publicIP: sender) ? .spoofedSource : .unknownSender)
        }
        guard let ipv6Subnet, ipv6Subnet.contains(header.destination) else { return .drop(.notOurSubnet) }
        peer = owner.nextHop.publicIP
        return .deliver
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
