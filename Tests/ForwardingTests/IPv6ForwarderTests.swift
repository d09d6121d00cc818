import Addressing
import Forwarding
import Packets
import Routes
import Testing

/// Host B's IPv6 side over the IPv4 underlay of `Bed`: peers A (fc00:0:0:1::/64) and C
/// (fc00:0:0:3::/64), ours fc00:0:0:2::/64, overlay MTU 1450; peer D (198.18.0.4) has an IPv4
/// lease only.
struct IPv6Bed: ~Copyable {
    static let subnetA = IPv6Prefix("fc00:0:0:1::/64")!
    static let subnetB = IPv6Prefix("fc00:0:0:2::/64")!
    static let subnetC = IPv6Prefix("fc00:0:0:3::/64")!
    static let publicD = IPv4Address(198, 18, 0, 4)
    static let overlayMTU = 1450

    let ipv4: RouteSnapshot
    let ipv6: IPv6RouteSnapshot
    let backend: Backend

    init(backend: Backend) {
        self.backend = backend
        let port: UInt16 = backend == .vxlan ? 8472 : 8285
        func hop(_ ip: IPv4Address, _ mac: MACAddress) -> NextHop {
            NextHop(publicIP: ip, port: port, vtepMAC: backend == .vxlan ? mac : MACAddress(0), backend: backend)
        }
        ipv4 = RouteSnapshot(
            routes: [
                Route(subnet: IPv4Prefix("10.244.1.0/24")!, nextHop: hop(Bed.publicA, Bed.macA)),
                Route(subnet: IPv4Prefix("10.244.3.0/24")!, nextHop: hop(Bed.publicC, Bed.macC)),
                Route(subnet: IPv4Prefix("10.244.4.0/24")!, nextHop: hop(IPv6Bed.publicD, Bed.macC)),
            ],
            network: IPv4Prefix("10.244.0.0/16")!,
            subnetLength: 24,
            localSubnet: IPv4Prefix("10.244.2.0/24")!
        )
        ipv6 = IPv6RouteSnapshot(
            routes: [
                IPv6Route(subnet: IPv6Bed.subnetA, nextHop: hop(Bed.publicA, Bed.macA)),
                IPv6Route(subnet: IPv6Bed.subnetB, nextHop: hop(Bed.publicB, Bed.macB)),
                IPv6Route(subnet: IPv6Bed.subnetC, nextHop: hop(Bed.publicC, Bed.macC)),
            ],
            network: IPv6Prefix("fc00::/48")!,
            subnetLength: 64,
            localSubnet: IPv6Bed.subnetB
        )
    }

    var forwarder: Forwarder {
        Forwarder(
            backend: backend,
            vni: 1,
            vtepMAC: Bed.macB,
            localSubnet: IPv4Prefix("10.244.2.0/24")!,
            ipv6Subnet: IPv6Bed.subnetB,
            overlayMTU: IPv6Bed.overlayMTU
        )
    }

    func fromTUN(_ bytes: [UInt8]) -> (TransmitVerdict, [UInt8]) {
        let buffer = TestBuffer(bytes)
        let verdict = forwarder.fromTUN(&buffer.packet, table: ipv4.table, ipv6Table: ipv6.table)
        return (verdict, buffer.bytes)
    }

    func fromWire(_ bytes: [UInt8], sender: IPv4Address = Bed.publicA) -> (ReceiveVerdict, [UInt8]) {
        let buffer = TestBuffer(bytes)
        let verdict = forwarder.fromWire(&buffer.packet, sender: sender, table: ipv4.table, ipv6Table: ipv6.table)
        return (verdict, buffer.bytes)
    }
}

/// Checks an ICMPv6 error from fc00:0:0:2:: (the TUN's address) to `offender`'s source: its
/// header, type and code, checksum over the pseudo-header, and the quote.
private func expectICMPv6Error(_ reply: [UInt8], type: UInt8, offender: [UInt8]) {
    #expect(reply.count == 40 + 8 + offender.count)
    #expect(reply[0] >> 4 == 6)
    #expect(Int(Reference.word(reply, 4)) == reply.count - 40)
    #expect(reply[6] == 58)
    #expect(Reference.ipv6Address(reply, 8) == IPv6Bed.subnetB.network)
    #expect(Array(reply[24..<40]) == Array(offender[8..<24]))
    #expect(reply[40] == type && reply[41] == 0)
    let pseudo = Reference.ipv6PseudoHeader(
        source: Array(reply[8..<24]),
        destination: Array(reply[24..<40]),
        nextHeader: 58,
        length: reply.count - 40
    )
    #expect(Reference.checksum(pseudo + reply[40...]) == 0)
    #expect(Array(reply[48...]) == offender)
}

@Suite struct IPv6FromTUNTests {
    let local = IPv6Address("fc00:0:0:2::5")!
    let remote = IPv6Address("fc00:0:0:3::7")!

    @Test func vxlanFramesItWithEtherTypeIPv6AndKeepsTheHopLimit() {
        let inner = Reference.udp6Packet(from: local, to: remote, hopLimit: 1)
        let (verdict, bytes) = IPv6Bed(backend: .vxlan).fromTUN(inner)
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

    @Test func udpDecrementsTheHopLimitAndWritesNoHeader() {
        let inner = Reference.udp6Packet(from: local, to: remote, hopLimit: 64)
        let (verdict, bytes) = IPv6Bed(backend: .udp).fromTUN(inner)
        #expect(verdict == .send(NextHop(publicIP: Bed.publicC, port: 8285, backend: .udp)))
        var expected = inner
        expected[7] = 63
        #expect(bytes == expected)
    }

    @Test func udpAnswersASpentHopLimitWithTimeExceeded() {
        let inner = Reference.udp6Packet(from: local, to: remote, hopLimit: 1)
        let (verdict, reply) = IPv6Bed(backend: .udp).fromTUN(inner)
        #expect(verdict == .replyToTUN(.hopLimitExpired))
        expectICMPv6Error(reply, type: 3, offender: inner)
    }

    @Test(arguments: [Backend.udp, .vxlan])
    func noRouteIsAnsweredWithDestinationUnreachable(backend: Backend) {
        let inner = Reference.udp6Packet(from: local, to: IPv6Address("fd00::1")!)
        let (verdict, reply) = IPv6Bed(backend: backend).fromTUN(inner)
        #expect(verdict == .replyToTUN(.noRoute))
        expectICMPv6Error(reply, type: 1, offender: inner)
    }

    @Test(arguments: [Backend.udp, .vxlan])
    func oversizeIsAnsweredWithPacketTooBigNamingTheOverlayMTU(backend: Backend) {
        let fits = Reference.udp6Packet(from: local, to: remote, payload: .init(repeating: 7, count: 1450 - 48))
        #expect(IPv6Bed(backend: backend).fromTUN(fits).0 != .replyToTUN(.oversize))
        let inner = Reference.udp6Packet(from: local, to: remote, payload: .init(repeating: 7, count: 1451 - 48))
        let (verdict, reply) = IPv6Bed(backend: backend).fromTUN(inner)
        #expect(verdict == .replyToTUN(.oversize))
        #expect(reply.count == 1280)
        #expect(reply[40] == 2 && reply[41] == 0)
        #expect(reply[44..<48].reduce(0) { $0 << 8 | Int($1) } == IPv6Bed.overlayMTU)
        #expect(Array(reply[48...]) == Array(inner[0..<(1280 - 48)]))
    }

    @Test func aSuperPacketIsNotTooBig() {
        let bed = IPv6Bed(backend: .udp)
        let inner = Reference.udp6Packet(from: local, to: remote, payload: .init(repeating: 7, count: 4000))
        let buffer = TestBuffer(inner)
        let verdict = bed.forwarder.fromTUN(
            &buffer.packet,
            table: bed.ipv4.table,
            ipv6Table: bed.ipv6.table,
            isSuperPacket: true
        )
        #expect(verdict == .send(NextHop(publicIP: Bed.publicC, port: 8285, backend: .udp)))
    }

    @Test func noAnswerToAnICMPv6Error() {
        // An ICMPv6 Destination Unreachable (type 1) with its hop limit spent.
        let icmp: [UInt8] =
            [0x60, 0, 0, 0, 0, 8, 58, 1] + Reference.bytes(local) + Reference.bytes(remote)
            + [1, 0, 0, 0, 0, 0, 0, 0]
        let (verdict, bytes) = IPv6Bed(backend: .udp).fromTUN(icmp)
        #expect(verdict == .drop(.hopLimitExpired))
        #expect(bytes == icmp)
    }

    @Test(arguments: [
        ([0x60] + [UInt8](repeating: 0, count: 38), DropReason.truncated),
        ([0x60, 0, 0, 0, 0, 9] + [UInt8](repeating: 0, count: 42), .badPayloadLength),
    ])
    func malformedIPv6IsDroppedByReason(bytes: [UInt8], reason: DropReason) {
        for backend in [Backend.udp, .vxlan] {
            #expect(IPv6Bed(backend: backend).fromTUN(bytes).0 == .drop(reason))
        }
    }

    @Test func trailingBytesPastThePayloadLengthAreCut() {
        let inner = Reference.udp6Packet(from: local, to: remote)
        let (_, bytes) = IPv6Bed(backend: .vxlan).fromTUN(inner + [0, 0, 0, 0])
        #expect(bytes.count == VXLAN.overhead + inner.count)
    }

    @Test func withoutAnIPv6TableIPv6IsTheWrongVersion() {
        let bed = IPv6Bed(backend: .udp)
        let buffer = TestBuffer(Reference.udp6Packet(from: local, to: remote))
        #expect(bed.forwarder.fromTUN(&buffer.packet, table: bed.ipv4.table) == .drop(.wrongVersion))
    }
}

@Suite struct IPv6FromWireTests {
    let fromA = IPv6Address("fc00:0:0:1::2")!
    let toB = IPv6Address("fc00:0:0:2::2")!

    private func frame(_ inner: [UInt8], etherType: UInt16 = 0x86DD) -> [UInt8] {
        Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner, etherType: etherType)
    }

    @Test func vxlanDeliversTheInnerPacketUntouched() {
        let inner = Reference.udp6Packet(from: fromA, to: toB, hopLimit: 1)
        let (verdict, bytes) = IPv6Bed(backend: .vxlan).fromWire(frame(inner) + [0, 0])
        #expect(verdict == .deliver)
        #expect(bytes == inner)
    }

    @Test func udpDecrementsTheHopLimit() {
        let inner = Reference.udp6Packet(from: fromA, to: toB, hopLimit: 9)
        let (verdict, bytes) = IPv6Bed(backend: .udp).fromWire(inner)
        #expect(verdict == .deliver)
        var expected = inner
        expected[7] = 8
        #expect(bytes == expected)
        let spent = Reference.udp6Packet(from: fromA, to: toB, hopLimit: 1)
        #expect(IPv6Bed(backend: .udp).fromWire(spent).0 == .drop(.hopLimitExpired))
    }

    @Test(arguments: [Backend.udp, .vxlan])
    func antiSpoofing(backend: Backend) {
        let bed = IPv6Bed(backend: backend)
        func payload(_ source: IPv6Address, _ destination: IPv6Address) -> [UInt8] {
            let inner = Reference.udp6Packet(from: source, to: destination)
            return backend == .vxlan ? frame(inner) : inner
        }
        #expect(bed.fromWire(payload(fromA, toB)).0 == .deliver)
        // A stranger: no lease names its address.
        #expect(bed.fromWire(payload(fromA, toB), sender: Bed.stranger).0 == .drop(.unknownSender))
        // Peer A sending from C's subnet, or from outside every subnet.
        #expect(bed.fromWire(payload(IPv6Address("fc00:0:0:3::2")!, toB)).0 == .drop(.spoofedSource))
        #expect(bed.fromWire(payload(IPv6Address("fd00::2")!, toB)).0 == .drop(.spoofedSource))
        // Peer D has an IPv4 lease only: a peer, but no IPv6 source is its own.
        #expect(bed.fromWire(payload(fromA, toB), sender: IPv6Bed.publicD).0 == .drop(.spoofedSource))
        // No relaying: a destination outside our IPv6 subnet.
        #expect(bed.fromWire(payload(fromA, IPv6Address("fc00:0:0:3::9")!)).0 == .drop(.notOurSubnet))
        #expect(bed.fromWire(payload(fromA, IPv6Address("ff02::1")!)).0 == .drop(.notOurSubnet))
    }

    @Test func aForwarderWithoutAnIPv6SubnetRelaysNothing() {
        let bed = IPv6Bed(backend: .udp)
        let forwarder = Forwarder(backend: .udp, localSubnet: IPv4Prefix("10.244.2.0/24")!)
        let buffer = TestBuffer(Reference.udp6Packet(from: fromA, to: toB))
        let verdict = forwarder.fromWire(
            &buffer.packet,
            sender: Bed.publicA,
            table: bed.ipv4.table,
            ipv6Table: bed.ipv6.table
        )
        #expect(verdict == .drop(.notOurSubnet))
    }

    @Test func vxlanFramesThatAreNeitherFamilyOrDisagreeWithTheirEtherType() {
        let bed = IPv6Bed(backend: .vxlan)
        let inner6 = Reference.udp6Packet(from: fromA, to: toB)
        let inner4 = Reference.udpPacket(
            from: IPv4Address(10, 244, 1, 2),
            to: IPv4Address(10, 244, 2, 2),
            payload: .init(repeating: 1, count: 32)
        )
        #expect(bed.fromWire(frame(inner6, etherType: 0x0806)).0 == .drop(.notIPv4))
        #expect(bed.fromWire(frame(inner4)).0 == .drop(.wrongVersion))
        #expect(bed.fromWire(frame(inner6, etherType: 0x0800)).0 == .drop(.wrongVersion))
        #expect(bed.fromWire(frame(Array(inner6[0..<30]))).0 == .drop(.truncated))
        var short = inner6
        short[5] += 1
        #expect(bed.fromWire(frame(short)).0 == .drop(.badPayloadLength))
        // The VXLAN checks come first, whatever the family.
        var wrongVNI = frame(inner6)
        wrongVNI[6] = 2
        #expect(bed.fromWire(wrongVNI).0 == .drop(.wrongVNI))
    }

    @Test func ipv4StillGoesTheIPv4Way() {
        let inner = Reference.udpPacket(from: IPv4Address(10, 244, 1, 2), to: IPv4Address(10, 244, 2, 2))
        let (verdict, bytes) = IPv6Bed(backend: .vxlan).fromWire(frame(inner, etherType: 0x0800))
        #expect(verdict == .deliver)
        #expect(bytes == inner)
    }
}

@Suite struct IPv6FlowHashTests {
    private func hash(_ bytes: [UInt8]) -> UInt32 {
        let buffer = TestBuffer(bytes)
        return VXLAN.flowHash(forInner: buffer.packet)
    }

    @Test func onePortPerFlowAndFlowsSpread() {
        let a = IPv6Address("fc00:0:0:1::2")!
        let b = IPv6Address("fc00:0:0:2::2")!
        let packet = Reference.udp6Packet(from: a, to: b)
        #expect(hash(packet) == hash(Reference.udp6Packet(from: a, to: b, hopLimit: 3, payload: [1, 2, 3])))
        #expect(hash(packet) != hash(Reference.udp6Packet(from: b, to: a)))
        var otherPort = packet
        otherPort[40] ^= 1
        #expect(hash(packet) != hash(otherPort))
        // Ports differing in many flows give many different ports.
        let ports = Set(
            (0..<64).map { index -> UInt16 in
                var flow = packet
                flow[41] = UInt8(index)
                let buffer = TestBuffer(flow)
                return VXLAN.sourcePort(forInner: buffer.packet)
            }
        )
        #expect(ports.count > 48)
    }
}
