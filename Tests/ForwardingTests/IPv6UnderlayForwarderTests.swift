import Addressing
import Forwarding
import Packets
import Routes
import Testing

/// Host B (2001:db8::2, v6 VtepMAC macB6) with vxlan's IPv6 underlay, as flannel's
/// flannel-v6.<VNI> carries inner IPv6: peer A (fc00:0:0:1::/64) publishes PublicIPv6
/// 2001:db8::1 and its own v6 VtepMAC; peer C (fc00:0:0:3::/64) has no PublicIPv6 and is still
/// reached over the IPv4 underlay. Overlay MTU 1450: 1430 over the IPv6 underlay.
struct IPv6UnderlayBed: ~Copyable {
    static let publicIPv6A = IPv6Address("2001:db8::1")!
    static let macA6 = MACAddress("02:00:00:00:06:01")!
    static let macB6 = MACAddress("02:00:00:00:06:02")!
    static let stranger = IPv6Address("2001:db8::99")!
    static let hopA = IPv6Hop(address: publicIPv6A, peer: Bed.publicA, port: 8472)

    let ipv4: RouteSnapshot
    let ipv6: IPv6RouteSnapshot

    init() {
        func hop(_ ip: IPv4Address, _ mac: MACAddress) -> NextHop {
            NextHop(publicIP: ip, port: 8472, vtepMAC: mac, backend: .vxlan)
        }
        ipv4 = RouteSnapshot(
            routes: [
                Route(subnet: IPv4Prefix("10.244.1.0/24")!, nextHop: hop(Bed.publicA, Bed.macA)),
                Route(subnet: IPv4Prefix("10.244.3.0/24")!, nextHop: hop(Bed.publicC, Bed.macC)),
            ],
            network: IPv4Prefix("10.244.0.0/16")!,
            subnetLength: 24,
            localSubnet: IPv4Prefix("10.244.2.0/24")!
        )
        ipv6 = IPv6RouteSnapshot(
            routes: [
                IPv6Route(
                    subnet: IPv6Bed.subnetA,
                    nextHop: hop(Bed.publicA, Bed.macA),
                    publicIPv6: Self.publicIPv6A,
                    vtepMAC: Self.macA6
                ),
                IPv6Route(subnet: IPv6Bed.subnetC, nextHop: hop(Bed.publicC, Bed.macC)),
            ],
            network: IPv6Prefix("fc00::/48")!,
            subnetLength: 64,
            localSubnet: IPv6Bed.subnetB
        )
    }

    func forwarder(ipv6Underlay: Bool = true) -> Forwarder {
        Forwarder(
            backend: .vxlan,
            vni: 1,
            vtepMAC: Bed.macB,
            localSubnet: IPv4Prefix("10.244.2.0/24")!,
            ipv6Subnet: IPv6Bed.subnetB,
            overlayMTU: IPv6Bed.overlayMTU,
            ipv6VtepMAC: ipv6Underlay ? Self.macB6 : nil
        )
    }

    func fromTUN(_ bytes: [UInt8], ipv6Underlay: Bool = true) -> (TransmitVerdict, [UInt8]) {
        let buffer = TestBuffer(bytes)
        let verdict = forwarder(ipv6Underlay: ipv6Underlay)
            .fromTUN(&buffer.packet, table: ipv4.table, ipv6Table: ipv6.table)
        return (verdict, buffer.bytes)
    }

    func fromIPv6Wire(_ bytes: [UInt8], sender: IPv6Address) -> (ReceiveVerdict, IPv4Address, [UInt8]) {
        let buffer = TestBuffer(bytes)
        var peer = IPv4Address(0)
        let verdict = forwarder().ipv6UnderlayFromWire(&buffer.packet, sender: sender, table: ipv6.table, peer: &peer)
        return (verdict, peer, buffer.bytes)
    }
}

@Suite struct IPv6UnderlayFromTUNTests {
    let local = IPv6Address("fc00:0:0:2::5")!
    let inA = IPv6Address("fc00:0:0:1::7")!
    let inC = IPv6Address("fc00:0:0:3::7")!

    @Test func aPeerWithPublicIPv6IsSentToOverIPv6FramedWithTheV6MACs() {
        let inner = Reference.udp6Packet(from: local, to: inA, hopLimit: 1)
        let (verdict, bytes) = IPv6UnderlayBed().fromTUN(inner)
        #expect(verdict == .sendIPv6(IPv6UnderlayBed.hopA))
        #expect(
            bytes
                == Reference.vxlanFrame(
                    vni: 1,
                    destination: IPv6UnderlayBed.macA6,
                    source: IPv6UnderlayBed.macB6,
                    inner: inner,
                    etherType: 0x86DD
                )
        )
    }

    @Test func aPeerWithoutPublicIPv6KeepsTheIPv4Underlay() {
        let inner = Reference.udp6Packet(from: local, to: inC)
        let (verdict, bytes) = IPv6UnderlayBed().fromTUN(inner)
        #expect(verdict == .send(NextHop(publicIP: Bed.publicC, port: 8472, vtepMAC: Bed.macC, backend: .vxlan)))
        #expect(
            bytes
                == Reference.vxlanFrame(
                    vni: 1,
                    destination: Bed.macC,
                    source: Bed.macB,
                    inner: inner,
                    etherType: 0x86DD
                )
        )
    }

    @Test func withoutAnIPv6UnderlayOfOurOwnEveryPeerIsReachedOverIPv4() {
        let inner = Reference.udp6Packet(from: local, to: inA)
        let (verdict, _) = IPv6UnderlayBed().fromTUN(inner, ipv6Underlay: false)
        #expect(verdict == .send(NextHop(publicIP: Bed.publicA, port: 8472, vtepMAC: Bed.macA, backend: .vxlan)))
    }

    @Test func theIPv6UnderlayFitsTwentyBytesLess() {
        let bed = IPv6UnderlayBed()
        #expect(bed.forwarder().ipv6UnderlayMTU == 1430)
        let fits = Reference.udp6Packet(from: local, to: inA, payload: .init(repeating: 7, count: 1430 - 48))
        #expect(bed.fromTUN(fits).0 == .sendIPv6(IPv6UnderlayBed.hopA))
        let inner = Reference.udp6Packet(from: local, to: inA, payload: .init(repeating: 7, count: 1431 - 48))
        let (verdict, reply) = bed.fromTUN(inner)
        #expect(verdict == .replyToTUN(.oversize))
        #expect(reply[40] == 2 && reply[41] == 0)
        #expect(reply[44..<48].reduce(0) { $0 << 8 | Int($1) } == 1430)
        // Over the IPv4 underlay the same packet fits.
        let toC = Reference.udp6Packet(from: local, to: inC, payload: .init(repeating: 7, count: 1431 - 48))
        #expect(
            bed.fromTUN(toC).0 == .send(NextHop(publicIP: Bed.publicC, port: 8472, vtepMAC: Bed.macC, backend: .vxlan))
        )
    }

    @Test func aSuperPacketIsNotTooBig() {
        let bed = IPv6UnderlayBed()
        let buffer = TestBuffer(Reference.udp6Packet(from: local, to: inA, payload: .init(repeating: 7, count: 4000)))
        let verdict = bed.forwarder().fromTUN(
            &buffer.packet,
            table: bed.ipv4.table,
            ipv6Table: bed.ipv6.table,
            isSuperPacket: true
        )
        #expect(verdict == .sendIPv6(IPv6UnderlayBed.hopA))
    }
}

@Suite struct IPv6UnderlayFromWireTests {
    let fromA = IPv6Address("fc00:0:0:1::2")!
    let toB = IPv6Address("fc00:0:0:2::2")!

    private func frame(
        _ inner: [UInt8],
        to destination: MACAddress = IPv6UnderlayBed.macB6,
        etherType: UInt16 = 0x86DD
    ) -> [UInt8] {
        Reference.vxlanFrame(
            vni: 1,
            destination: destination,
            source: IPv6UnderlayBed.macA6,
            inner: inner,
            etherType: etherType
        )
    }

    @Test func aPeersDatagramIsDeliveredAndCountedUnderItsIPv4PublicIP() {
        let inner = Reference.udp6Packet(from: fromA, to: toB, hopLimit: 1)
        let (verdict, peer, bytes) = IPv6UnderlayBed().fromIPv6Wire(frame(inner), sender: IPv6UnderlayBed.publicIPv6A)
        #expect(verdict == .deliver)
        #expect(peer == Bed.publicA)
        #expect(bytes == inner)
    }

    @Test func antiSpoofingByTheSendersIPv6Address() {
        let bed = IPv6UnderlayBed()
        let good = frame(Reference.udp6Packet(from: fromA, to: toB))
        // A stranger on the IPv6 underlay, whatever it carries.
        #expect(bed.fromIPv6Wire(good, sender: IPv6UnderlayBed.stranger).0 == .drop(.unknownSender))
        // Peer A sending from C's subnet, or from outside every subnet.
        let fromC = frame(Reference.udp6Packet(from: IPv6Address("fc00:0:0:3::2")!, to: toB))
        #expect(bed.fromIPv6Wire(fromC, sender: IPv6UnderlayBed.publicIPv6A).0 == .drop(.spoofedSource))
        let outside = frame(Reference.udp6Packet(from: IPv6Address("fd00::2")!, to: toB))
        #expect(bed.fromIPv6Wire(outside, sender: IPv6UnderlayBed.publicIPv6A).0 == .drop(.spoofedSource))
        // No relaying.
        let relay = frame(Reference.udp6Packet(from: fromA, to: IPv6Address("fc00:0:0:3::9")!))
        #expect(bed.fromIPv6Wire(relay, sender: IPv6UnderlayBed.publicIPv6A).0 == .drop(.notOurSubnet))
    }

    @Test func onlyOurV6MACAndEtherTypeIPv6AreAccepted() {
        let bed = IPv6UnderlayBed()
        let inner = Reference.udp6Packet(from: fromA, to: toB)
        // The IPv4 underlay's VtepMAC is not the IPv6 device's.
        #expect(
            bed.fromIPv6Wire(frame(inner, to: Bed.macB), sender: IPv6UnderlayBed.publicIPv6A).0 == .drop(.notOurMAC)
        )
        let inner4 = Reference.udpPacket(from: IPv4Address(10, 244, 1, 2), to: IPv4Address(10, 244, 2, 2))
        let ipv4Frame = frame(inner4, etherType: 0x0800)
        #expect(bed.fromIPv6Wire(ipv4Frame, sender: IPv6UnderlayBed.publicIPv6A).0 == .drop(.notIPv4))
    }
}
