import Addressing
import Packets
import Routes

/// The per-packet pipeline between the TUN and the peers, for the udp and vxlan backends: the
/// engine's workers call it on every packet, and `weft replay` calls the same functions on captures.
///
/// A trivial value (no references): copy one into each worker. Nothing here allocates or locks.
///
/// Inner IPv6 packets take the same pipeline with an IPv6 route table (Forwarder+IPv6.swift).
///
/// TTL (IPv6: the hop limit): the udp backend decrements it on both sides, as flannel's proxy
/// does. The vxlan backend does not: the kernel's vxlan device leaves the TTL alone (the forwarding hops into and out of
/// flannel.1 decrement it), and the kernel forwards into and out of Weft's TUN just the same, so a
/// Weft node and a flannel.1 node hand the peer identical inner packets.
public struct Forwarder: Sendable {
    public let backend: Backend
    /// Our VNI: stamped on what we send, required on what we accept (vxlan).
    public let vni: UInt32
    /// Our VTEP MAC: the inner Ethernet source we send, the destination we accept (vxlan).
    public let vtepMAC: MACAddress
    /// Our lease's subnet: the only inner destinations a peer's datagram may carry. The kernel
    /// forwards whatever the TUN hands it, so a packet for anywhere else (the underlay, etcd,
    /// another peer's subnet) would make this host a relay for anyone who sends from a peer's
    /// PublicIP, which anyone on the underlay can.
    public let localSubnet: IPv4Prefix

    /// Our IPv6 lease's subnet, as `localSubnet` is for IPv4; nil when the overlay carries no IPv6
    /// (every inner IPv6 packet from a peer is then `.notOurSubnet`, and none from the TUN is answered).
    public let ipv6Subnet: IPv6Prefix?
    /// The TUN's MTU: an inner IPv6 packet longer than this is answered with Packet Too Big naming it.
    public let overlayMTU: Int
    /// vxlan with an IPv6 underlay (flannel's `flannel-v6.<VNI>`): BackendV6Data's VtepMAC, the
    /// inner Ethernet source of what we send over it and the destination we accept from it; nil
    /// when this host has no PublicIPv6, and inner IPv6 crosses the IPv4 underlay.
    public let ipv6VtepMAC: MACAddress?

    /// The TUN's address (our lease's network address): the source of ICMP unreachables.
    @inlinable public var tunAddress: IPv4Address { localSubnet.network }

    /// `backend` is udp or vxlan; host-gw moves no packet through Weft.
    public init(
        backend: Backend,
        vni: UInt32 = 1,
        vtepMAC: MACAddress = MACAddress(0),
        localSubnet: IPv4Prefix,
        ipv6Subnet: IPv6Prefix? = nil,
        overlayMTU: Int = Int(UInt16.max),
        ipv6VtepMAC: MACAddress? = nil
    ) {
        precondition(backend != .hostGateway, "host-gw forwards in the kernel: there is no Weft pipeline for it")
        self.backend = backend
        self.vni = vni & 0xFF_FFFF
        self.vtepMAC = vtepMAC
        self.localSubnet = localSubnet
        self.ipv6Subnet = ipv6Subnet
        self.overlayMTU = overlayMTU
        self.ipv6VtepMAC = backend == .vxlan ? ipv6VtepMAC : nil
    }

    /// The largest inner IPv6 packet the IPv6 underlay carries: its 40-byte outer header leaves
    /// 20 bytes less than IPv4's (flannel-v6's MTU is the interface's − 70, flannel.1's − 50).
    @inlinable public var ipv6UnderlayMTU: Int { overlayMTU - (IPv6Header.length - IPv4Header.minimumLength) }

    /// Bytes a packet read from the TUN needs in front of it so `fromTUN` encapsulates in place.
    @inlinable public var headroom: Int { backend == .vxlan ? VXLAN.overhead : 0 }

    /// A packet read from the TUN: validate it as IPv4 (and trim it to its total length), look up
    /// the peer that owns its destination, then encapsulate it in place for the backend.
    /// No route: the packet is turned into an ICMP net unreachable for its sender (`.replyToTUN`),
    /// or dropped when no reply is due (e.g. it was itself an ICMP error).
    /// With `ipv6Table`, an IPv6 packet goes the IPv6 way (`ipv6FromTUN`); without, it is
    /// `.wrongVersion`. IPv4 refuses it first, so IPv4's path pays nothing for IPv6.
    /// `isSuperPacket`: a TSO/USO super-packet, which the engine cuts to the MTU after this.
    @inlinable
    public func fromTUN(
        _ packet: inout PacketBuffer,
        table: RouteTable,
        ipv6Table: IPv6RouteTable? = nil,
        isSuperPacket: Bool = false
    ) -> TransmitVerdict {
        if let reason = IPv4.validateAndTrim(&packet) {
            guard reason == .wrongVersion, let ipv6Table else { return .drop(reason) }
            return ipv6FromTUN(&packet, table: ipv6Table, isSuperPacket: isSuperPacket)
        }
        guard let nextHop = table.lookup(IPv4Header(packet).destination) else {
            return ICMPUnreachable.replace(&packet, with: .netUnreachable, source: tunAddress)
                ? .replyToTUN(.noRoute) : .drop(.noRoute)
        }
        if backend == .udp {
            if let reason = IPv4.decrementTTL(packet) { return .drop(reason) }
        } else {
            // Short headroom is a buffer-layout bug, not a packet fault; it still must not crash.
            guard encapsulate(&packet, to: nextHop) else { return .drop(.oversize) }
        }
        return .send(nextHop)
    }

    /// vxlan: prepends, in place, the VXLAN header with our VNI and the inner Ethernet header from
    /// our VtepMAC to `nextHop`'s; false when the headroom is short. `fromTUN` frames each packet
    /// with it, and the engine each segment it cuts from a super-packet. `etherType` names the
    /// inner packet's family (EtherType.ipv6 for IPv6).
    @inlinable
    public func encapsulate(
        _ packet: inout PacketBuffer,
        to nextHop: NextHop,
        etherType: UInt16 = EtherType.ipv4
    ) -> Bool {
        VXLAN.encapsulate(&packet, vni: vni, source: vtepMAC, destination: nextHop.vtepMAC, etherType: etherType)
    }

    /// The flow hash of a payload `fromTUN` made for sending: vxlan hashes the inner packet behind
    /// the headers (what picks the outer source port); udp has one source port and hashes nothing.
    @inlinable
    public func flowHash(ofPayload payload: PacketBuffer) -> UInt32 {
        guard backend == .vxlan else { return 0 }
        var inner = payload
        inner.consume(VXLAN.overhead)
        return VXLAN.flowHash(forInner: inner)
    }

    /// A datagram's payload received from `sender` (the outer source address): decapsulate it,
    /// then admit it only from a current peer, only with an inner source inside that peer's
    /// subnet and only with an inner destination inside ours. On `.deliver` the buffer holds the
    /// inner IPv4 packet for the TUN. With `ipv6Table`, an inner IPv6 packet (which IPv4's
    /// decapsulation refuses for its version or EtherType) goes the IPv6 way (`ipv6FromWire`).
    @inlinable
    public func fromWire(
        _ packet: inout PacketBuffer,
        sender: IPv4Address,
        table: RouteTable,
        ipv6Table: IPv6RouteTable? = nil
    ) -> ReceiveVerdict {
        if let reason = decapsulate(&packet) {
            // What IPv4's decapsulation says of an IPv6 packet, before it changed anything.
            let ipv6Refusal: DropReason = backend == .udp ? .wrongVersion : .notIPv4
            guard reason == ipv6Refusal, let ipv6Table else { return .drop(reason) }
            return ipv6FromWire(&packet, sender: sender, table: ipv6Table, ipv4Table: table)
        }
        if let reason = admit(packet, sender: sender, table: table) { return .drop(reason) }
        return .deliver
    }

    /// The backend half of `fromWire`: strip the encapsulation (vxlan: our VNI, our MAC or
    /// broadcast, EtherType IPv4), validate the inner IPv4 packet and trim it, and for udp decrement
    /// the TTL. `weft replay decap` without routes stops here.
    @inlinable
    public func decapsulate(_ packet: inout PacketBuffer) -> DropReason? {
        if backend == .udp {
            if let reason = UDPBackend.decapsulate(&packet) { return reason }
            return IPv4.decrementTTL(packet)
        }
        return VXLAN.decapsulate(&packet, vni: vni, localMAC: vtepMAC)
    }

    /// Admission of a decapsulated inner packet. Anti-spoofing: the subnet holding its source must
    /// be the sender's (`.unknownSender` when the sender owns no lease at all, `.spoofedSource`
    /// when it does but the inner source lies outside its subnet). Then no relaying: its
    /// destination must lie in our subnet (`.notOurSubnet`), which holds the TUN's address and
    /// the subnet's broadcast. The sender is judged first, so a stranger's packet counts as a
    /// stranger's whatever it carries.
    @inlinable
    public func admit(_ inner: PacketBuffer, sender: IPv4Address, table: RouteTable) -> DropReason? {
        let header = IPv4Header(inner)
        guard let owner = table.lookup(header.source), owner.publicIP == sender else {
            return table.isPeer(publicIP: sender) ? .spoofedSource : .unknownSender
        }
        return localSubnet.contains(header.destination) ? nil : .notOurSubnet
    }
}
